//! Who wrote each search hit: agent, source, episode, written time, validity.

use std::collections::HashMap;

use cairn::{Memory, Target};

use crate::types::Written;

/// The provenance of `targets`, read from the rows' episodes. Targets that no longer
/// exist are left out.
//
// Until `Memory::provenance` lands in the library this reads each row and its episode
// one by one; observations (which have no by-id read) get none.
pub(crate) fn of(memory: &Memory, targets: &[Target]) -> cairn::Result<HashMap<Target, Written>> {
    let mut out = HashMap::new();
    for &target in targets {
        let (episode, at, valid_from, valid_to) = match target {
            Target::Entity(id) => match memory.entity(id)? {
                Some(e) => (e.episode, Some(e.created_at), None, None),
                None => continue,
            },
            Target::Relation(id) => match memory.relation(id)? {
                Some(r) => (r.episode, Some(r.first_seen), r.valid_from, r.valid_to),
                None => continue,
            },
            Target::Chunk(id) => match memory.chunk(id)? {
                Some(c) => (c.episode, Some(c.created_at), None, None),
                None => continue,
            },
            _ => continue,
        };
        let info = match episode {
            Some(e) => memory.get_episode(e)?,
            None => None,
        };
        out.insert(
            target,
            Written {
                episode: episode.map(|e| e.get()),
                agent: info.as_ref().and_then(|i| i.agent.clone()),
                source: info.as_ref().and_then(|i| i.source.clone()),
                at,
                valid_from,
                valid_to,
            },
        );
    }
    Ok(out)
}

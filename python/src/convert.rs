//! Python values ↔ the library's: times, JSON metadata, entity references, kinds.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyString, PyType};

use cairn::{EntityId, EntityRef, HitKind, Timestamp};

use crate::errors::invalid;

/// A time argument: a `datetime.datetime` (naive ones are local time, as
/// `datetime.timestamp()` reads them) or unix seconds as an `int` or `float`.
pub(crate) fn timestamp(arg: &Bound<'_, PyAny>, field: &'static str) -> PyResult<Timestamp> {
    let py = arg.py();
    let seconds: f64 = if arg.hasattr("timestamp")? {
        arg.call_method0("timestamp")?.extract()?
    } else if arg.is_instance_of::<pyo3::types::PyBool>() {
        return Err(invalid(
            py,
            field,
            "expected a datetime or unix seconds, not a bool",
        ));
    } else {
        arg.extract()
            .map_err(|_| invalid(py, field, "expected a datetime or unix seconds"))?
    };
    if !seconds.is_finite() {
        return Err(invalid(py, field, "the time is not finite"));
    }
    // Saturates far outside any real time (about ±292 million years).
    Ok(Timestamp::from_millis((seconds * 1000.0).round() as i64))
}

/// An optional time argument.
pub(crate) fn timestamp_opt(
    arg: Option<&Bound<'_, PyAny>>,
    field: &'static str,
) -> PyResult<Option<Timestamp>> {
    arg.map(|a| timestamp(a, field)).transpose()
}

/// `datetime.datetime` and `datetime.timezone.utc`, looked up once.
static DATETIME: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static UTC: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// A stored time as an aware UTC `datetime.datetime`.
pub(crate) fn datetime(py: Python<'_>, at: Timestamp) -> PyResult<Py<PyAny>> {
    let class = DATETIME.import(py, "datetime", "datetime")?;
    let utc = UTC.get_or_try_init(py, || -> PyResult<Py<PyAny>> {
        Ok(py
            .import("datetime")?
            .getattr("timezone")?
            .getattr("utc")?
            .unbind())
    })?;
    let seconds = at.as_millis() as f64 / 1000.0;
    Ok(class
        .call_method1("fromtimestamp", (seconds, utc.bind(py)))?
        .unbind())
}

/// An optional stored time as a `datetime`.
pub(crate) fn datetime_opt(py: Python<'_>, at: Option<Timestamp>) -> PyResult<Option<Py<PyAny>>> {
    at.map(|t| datetime(py, t)).transpose()
}

static JSON_DUMPS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static JSON_LOADS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// Caller metadata (anything `json.dumps` accepts) as a JSON value.
pub(crate) fn json_value(
    arg: &Bound<'_, PyAny>,
    field: &'static str,
) -> PyResult<cairn::serde_json::Value> {
    let py = arg.py();
    let dumps = JSON_DUMPS.import(py, "json", "dumps")?;
    let text: String = dumps
        .call1((arg,))
        .map_err(|e| invalid(py, field, format!("not JSON-serializable: {e}")))?
        .extract()?;
    cairn::serde_json::from_str(&text).map_err(|e| invalid(py, field, e.to_string()))
}

/// Optional caller metadata.
pub(crate) fn json_opt(
    arg: Option<&Bound<'_, PyAny>>,
    field: &'static str,
) -> PyResult<Option<cairn::serde_json::Value>> {
    arg.map(|a| json_value(a, field)).transpose()
}

/// Stored metadata (a JSON text) as Python values.
pub(crate) fn json_to_py(py: Python<'_>, text: Option<&str>) -> PyResult<Option<Py<PyAny>>> {
    let Some(text) = text else { return Ok(None) };
    let loads = JSON_LOADS.import(py, "json", "loads")?;
    Ok(Some(loads.call1((text,))?.unbind()))
}

/// An entity given by name (`str`, found or created on write) or id (`int`).
pub(crate) fn entity_ref(
    arg: &Bound<'_, PyAny>,
    field: &'static str,
) -> PyResult<EntityRef<'static>> {
    if let Ok(s) = arg.cast::<PyString>() {
        return Ok(EntityRef::Name(s.to_cow()?.into_owned().into()));
    }
    if arg.is_instance_of::<pyo3::types::PyBool>() {
        return Err(invalid(
            arg.py(),
            field,
            "expected a name (str) or an entity id (int)",
        ));
    }
    match arg.extract::<i64>() {
        Ok(id) => Ok(EntityRef::Id(EntityId::from_raw(id))),
        Err(_) => Err(invalid(
            arg.py(),
            field,
            "expected a name (str) or an entity id (int)",
        )),
    }
}

/// Hit kinds by their names: `entity`, `relation`, `observation`, `chunk`.
pub(crate) fn hit_kinds(py: Python<'_>, names: &[String]) -> PyResult<Vec<HitKind>> {
    names
        .iter()
        .map(|name| match name.as_str() {
            "entity" => Ok(HitKind::Entity),
            "relation" => Ok(HitKind::Relation),
            "observation" => Ok(HitKind::Observation),
            "chunk" => Ok(HitKind::Chunk),
            other => Err(invalid(
                py,
                "kinds",
                format!("{other:?} is not one of entity, relation, observation, chunk"),
            )),
        })
        .collect()
}

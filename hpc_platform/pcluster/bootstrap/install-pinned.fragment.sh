# --- install-pinned.fragment.sh (the node-exporter and prometheus-agent scripts include it)
# install_pinned NAME URL SHA256 MEMBER TARGET: download URL, refuse it (exit 1, naming NAME) unless
# its SHA-256 is the pinned one, and take one program (MEMBER) out of the Debian package (an `ar`
# archive holding data.tar.*) into TARGET, with Python's standard library: no dpkg on the node.
install_pinned() { # name url sha256 member target
  local work
  work="$(mktemp -d)"
  curl --fail --silent --show-error --location --retry 5 --output "${work}/package.deb" "$2"
  echo "$3  ${work}/package.deb" | sha256sum --check --status \
    || { echo "$1: checksum of $2 is not the pinned $3; refusing it" >&2; exit 1; }
  python3 - "${work}/package.deb" "$4" "$5" <<'PY'
import io, sys, tarfile
path, member, target = sys.argv[1:]
data = open(path, "rb").read()
assert data[:8] == b"!<arch>\n", "not a Debian package"
pos = 8
while pos < len(data):
    name = data[pos:pos + 16].decode().strip().rstrip("/")
    size = int(data[pos + 48:pos + 58].decode().strip())
    pos += 60
    if name.startswith("data.tar"):
        archive = tarfile.open(fileobj=io.BytesIO(data[pos:pos + size]), mode="r:*")
        with open(target, "wb") as out:
            out.write(archive.extractfile(member).read())
        break
    pos += size + size % 2
else:
    sys.exit(f"{member} not found in {path}")
PY
  chmod 0755 "$5"
  rm -rf "${work}"
}
# --- end of install-pinned.fragment.sh

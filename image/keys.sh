#!/bin/bash
# image/keys.sh — the update signing material for development builds: a CA (its certificate is
# the RAUC keyring baked into the image) and a code-signing certificate issued by it (signs the
# bundles). Made once with openssl into KEYDIR (default build/keys, gitignored: never commit it),
# then reused; a lock file keeps two builds running at the same time from making two CAs.
# Usage: keys.sh [KEYDIR]   Prints nothing when the keys exist already.
# Production: do not use these. Set EDGE_KEYRING (CA certificate(s) for the image),
# EDGE_SIGNING_CERT and EDGE_SIGNING_KEY (file or PKCS#11 URI) instead: see docs/image.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
die() { echo "keys.sh: error: $*" >&2; exit 1; }
dir=${1:-$here/../build/keys}
command -v openssl >/dev/null || die "openssl is not installed (apt-get install openssl)"
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
exec 9>"$dir/.lock"
flock 9
files="ca.cert.pem ca.key.pem signing.cert.pem signing.key.pem"
missing=0
for f in $files; do [ -s "$dir/$f" ] || missing=1; done
[ $missing = 1 ] || exit 0

echo "keys.sh: making development signing keys in $dir (not for production)"
tmp=$(mktemp -d "$dir/.new.XXXXXX"); trap 'rm -rf "$tmp"' EXIT
umask 077
cat > "$tmp/signing.ext" <<'EXT'
basicConstraints=critical,CA:false
keyUsage=critical,digitalSignature
extendedKeyUsage=critical,codeSigning
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
EXT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
    -subj "/O=DICOM Edge Appliance development/CN=Edge appliance development update CA" \
    -addext basicConstraints=critical,CA:true -addext keyUsage=critical,keyCertSign,cRLSign \
    -keyout "$tmp/ca.key.pem" -out "$tmp/ca.cert.pem" 2>/dev/null || die "openssl could not make the CA"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -subj "/O=DICOM Edge Appliance development/CN=Edge appliance development bundle signing" \
    -keyout "$tmp/signing.key.pem" -out "$tmp/signing.csr" 2>/dev/null ||
    die "openssl could not make the signing key"
openssl x509 -req -in "$tmp/signing.csr" -CA "$tmp/ca.cert.pem" -CAkey "$tmp/ca.key.pem" \
    -CAcreateserial -days 3650 -extfile "$tmp/signing.ext" -out "$tmp/signing.cert.pem" 2>/dev/null ||
    die "openssl could not sign the signing certificate"
chmod 0644 "$tmp/ca.cert.pem" "$tmp/signing.cert.pem"
for f in $files; do mv -f "$tmp/$f" "$dir/$f"; done
echo "keys.sh: done: $dir/ca.cert.pem is the keyring, signing.{cert,key}.pem sign bundles"

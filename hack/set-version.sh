#!/usr/bin/env bash
# set-version.sh VERSION CHART_YAML writes the release version X.Y.Z (a leading
# v is dropped) into a Chart.yaml: version, appVersion, and the manager image
# tag vX.Y.Z in the artifacthub.io/images annotation. The chart derives the
# default image tag from appVersion, so these are all the places that name it.
set -euo pipefail

[ "$#" = 2 ] || { echo "usage: $0 VERSION CHART_YAML" >&2; exit 2; }
version="${1#v}"
chart="$2"
[[ "${version}" =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]] ||
  { echo "set-version: ${1} is not a semantic version X.Y.Z[-pre]" >&2; exit 1; }

sed -i.bak \
  -e "s/^version: .*/version: ${version}/" \
  -e "s/^appVersion: .*/appVersion: \"${version}\"/" \
  -e "s|\(image: ghcr.io/talkover/talkover-operator:\)v[^[:space:]]*|\1v${version}|" \
  "${chart}"
rm -f "${chart}.bak"
grep -q "^version: ${version}$" "${chart}" && grep -q "^appVersion: \"${version}\"$" "${chart}" ||
  { echo "set-version: ${chart} has no version or appVersion line" >&2; exit 1; }

# Sourced by .ci/run: what the portal's browser test needs — Debian's chromium and
# chromium-driver, a Korean font for readable screenshots, and playwright-core from npm
# (e2e/package-lock.json) — then HAECHI_REQUIRE_E2E so the test fails instead of skipping.
_haechi_e2e_missing=()
command -v chromium >/dev/null 2>&1 || _haechi_e2e_missing+=(chromium chromium-driver)
fc-list 2>/dev/null | grep -qi nanum || _haechi_e2e_missing+=(fonts-nanum)
if [ "${#_haechi_e2e_missing[@]}" -gt 0 ]; then
  echo "e2e: installing ${_haechi_e2e_missing[*]} from Debian (apt-get)..."
  if [ "$(id -u)" != 0 ]; then echo "e2e: need root to install ${_haechi_e2e_missing[*]}" >&2; return 1; fi
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${_haechi_e2e_missing[@]}" >/dev/null
fi
echo "e2e: $(chromium --version 2>/dev/null | head -1); installing playwright-core (npm ci)"
npm ci --prefix e2e --no-audit --no-fund --loglevel=error >/dev/null
export HAECHI_REQUIRE_E2E=1

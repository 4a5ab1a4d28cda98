# shellcheck shell=bash
# Sourced by scripts/lint-deploy and scripts/moto-cfn-smoke: one tool venv under target/,
# reinstalled only when the pinned requirements change.
VENV=target/lint-venv
REQUIREMENTS=scripts/deploy-checks/requirements.txt

ensure_lint_venv() {
  local stamp="$VENV/.requirements"
  if [ -x "$VENV/bin/python" ] && cmp -s "$REQUIREMENTS" "$stamp"; then
    return 0
  fi
  echo "--- installing deploy tools into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
  cp "$REQUIREMENTS" "$stamp"
}

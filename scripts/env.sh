# Source this to use the self-contained environment: `source scripts/env.sh`.
_sp_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck disable=SC1091
source "$_sp_root/.venv/bin/activate"
export AMENT_PREFIX_PATH="$_sp_root/.venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export CMAKE_PREFIX_PATH="$_sp_root/.venv${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
export RMW_IMPLEMENTATION=${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
# shellcheck disable=SC1091
source "$_sp_root/install/setup.bash"
unset _sp_root

# Source this to use the self-contained environment: `source scripts/env.sh`.
_sp_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck disable=SC1091
source "$_sp_root/.venv/bin/activate"
export AMENT_PREFIX_PATH="$_sp_root/.venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export CMAKE_PREFIX_PATH="$_sp_root/.venv${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
export RMW_IMPLEMENTATION=${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
# Fast DDS's 512 KiB shared-memory segment cannot carry camera frames: use the shipped
# profile (32 MiB segment, UDP kept for other hosts) unless the user has set one.
if [ -z "${FASTDDS_DEFAULT_PROFILES_FILE:-}${FASTRTPS_DEFAULT_PROFILES_FILE:-}" ]; then
  export FASTDDS_DEFAULT_PROFILES_FILE="$_sp_root/seg_perception/ros/fastdds_profile.xml"
fi
# shellcheck disable=SC1091
source "$_sp_root/install/setup.bash"
unset _sp_root

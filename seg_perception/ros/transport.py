"""The shipped Fast DDS profile and the rule that applies it (no rclpy import).

Fast DDS reads its profile file from the environment when a participant is created,
so every entry point calls ``apply_default_profile()`` before ``rclpy.init()``: the
node's ``main``, the live replay, the demo, the launch file and the test fixtures.
A profile the user has set already (either variable) is left alone.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path

#: Fast DDS 3 (Jazzy, Kilted) reads the first, Fast DDS 2 (Humble) the second.
PROFILE_ENV_VARS = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")
#: Shared-memory segment of the shipped profile, bytes (five 1920x1080 rgb8 frames).
SHM_SEGMENT_BYTES = 32 * 1024 * 1024


def default_profile_path() -> Path:
    """Absolute path of the profile installed with the package."""
    return Path(__file__).resolve().with_name("fastdds_profile.xml")


def user_profile(environ: MutableMapping[str, str] | None = None) -> str | None:
    """The profile file the user set, or None."""
    env = os.environ if environ is None else environ
    for var in PROFILE_ENV_VARS:
        if env.get(var):
            return env[var]
    return None


def profile_environment(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """The variables to add so a process gets the shipped profile; empty when the user set their own
    or the RMW is not Fast DDS."""
    env = os.environ if environ is None else environ
    if user_profile(env) is not None:
        return {}
    rmw = env.get("RMW_IMPLEMENTATION", "")
    if rmw and "fastrtps" not in rmw and "fastdds" not in rmw:
        return {}
    path = str(default_profile_path())
    # Fast DDS 3 warns that the old variable is deprecated, so it is set only for Humble.
    wanted = PROFILE_ENV_VARS if env.get("ROS_DISTRO", "") == "humble" else PROFILE_ENV_VARS[:1]
    return {var: path for var in wanted}


def apply_default_profile(environ: MutableMapping[str, str] | None = None) -> str | None:
    """Set the shipped profile in ``environ`` (default: this process) unless one is set.

    Returns the profile in force afterwards (the user's or ours), or None for another RMW.
    """
    env = os.environ if environ is None else environ
    env.update(profile_environment(env))
    return user_profile(env)

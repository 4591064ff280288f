"""`python -m tests.support.probe_bot --room NAME`: the bot of `python -m bot --room NAME`, its
face pictures marked by the A/V probe (tests/support/av_marker.py: a corner square white in
exactly the pictures whose audio holds a click). Test instrumentation only: the service has no
probe mode."""

from __future__ import annotations

import argparse

from bot.__main__ import run_room
from tests.support.av_marker import AVSyncMarker


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.support.probe_bot", description=__doc__)
    parser.add_argument("--room", required=True, help="LiveKit room to join")
    run_room(parser.parse_args().room, face_marker=AVSyncMarker())


if __name__ == "__main__":
    main()

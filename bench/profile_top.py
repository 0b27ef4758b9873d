"""The top of a py-spy profile in collapsed form (``py-spy record -f raw``), as text.

Prints the functions with the most samples on the stack (cumulative) and at its top
(self), as a share of all samples; idle samples (py-spy's own "idle" frames are not
recorded, so every sample is a thread doing something) count like any other.

    .venv/bin/python bench/profile_top.py PROFILE.txt [--top 15] [--only dsmsyncd]
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path


def frames(stack: str) -> list[str]:
    """``func (file.py:LINE)`` frames, outermost first, without their line numbers."""
    return [frame.rsplit(":", 1)[0] + ")" if ":" in frame else frame for frame in stack.split(";")]


def top(path: Path, count: int, only: str) -> str:
    cumulative: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        stack, _, samples = line.rpartition(" ")
        if not stack:
            continue
        n = int(samples)
        total += n
        named = frames(stack)
        own[named[-1]] += n
        for frame in set(named):
            cumulative[frame] += n
    lines = [f"{total} samples", "", "cumulative:"]
    picked = [(f, n) for f, n in cumulative.most_common() if only in f][:count]
    lines += [f"  {n / total:6.1%}  {frame}" for frame, n in picked]
    lines += ["", "self:"]
    lines += [f"  {n / total:6.1%}  {frame}" for frame, n in own.most_common(count)]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--only", default="", help="cumulative: frames containing this only")
    args = parser.parse_args()
    print(top(args.profile, args.top, args.only))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

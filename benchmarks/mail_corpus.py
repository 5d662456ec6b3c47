"""A generated corpus of e-mail-like text (`learnjax.data.mail`), for
measuring learnjax on real-sized text without downloading any: one message
per line, median about 1,000 characters with a long tail, HTML remnants, URLs,
quoted replies, signatures, four languages, and spam whose tell-tale words
come after its first lines.

    python -m benchmarks.mail_corpus OUT.txt [--mb 5] [--seed 0]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from learnjax.data.mail import MailWriter, write_mails

__all__ = ["MailWriter", "write_mails"]

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--mb", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(write_mails(args.out, args.mb, args.seed))

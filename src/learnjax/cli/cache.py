"""`learnjax cache list`, `graph` and `prune`: the cache of models and measurements."""

from __future__ import annotations

import argparse

from learnjax.cli.common import (
    add_command,
    megabytes,
    print_json,
)

EXAMPLES = {
    "cache": """examples:
  learnjax cache list
  learnjax cache graph          # what each entry read, and the seconds it took
  learnjax cache prune          # entries of older versions of the code
  learnjax cache prune --all    # everything""",
}


def cmd_cache_list(args: argparse.Namespace) -> None:
    from learnjax.storage.cache import cache_root, list_entries

    entries = list_entries()
    total = sum(e.bytes for e in entries)
    if args.json:
        print_json({"cache": str(cache_root()), "entries": [e.to_dict() for e in entries], "total_bytes": total})
        return
    for e in entries:
        print(f"{e.name:<40} {megabytes(e.bytes):>10}  {e.status}")
    stale = sum(e.status in ("stale", "outdated", "incomplete") for e in entries)
    print(
        f"{megabytes(total)} in {len(entries)} entries in {cache_root()}"
        + (f"; `learnjax cache prune` removes the {stale} stale, outdated or incomplete" if stale else "")
    )


def cmd_cache_graph(args: argparse.Namespace) -> None:
    from learnjax.storage.cache import cache_root, entry_graph

    rows = entry_graph()
    if args.json:
        print_json({"cache": str(cache_root()), "entries": rows})
        return
    for row in rows:
        seconds = "" if row["seconds"] is None else f"{row['seconds']:.1f} s"
        print(
            f"{row['name']:<40} {row['status']:<10} {seconds:>9}  {row['modules']:>3} modules"
            + (f"  reads {', '.join(row['reads'])}" if row["reads"] else "")
        )
    total = sum(row["seconds"] or 0 for row in rows if row["status"] == "current")
    print(f"{len(rows)} entries in {cache_root()}; the current ones took {total:.0f} s to compute")


def cmd_cache_prune(args: argparse.Namespace) -> None:
    from learnjax.storage.cache import cache_root, prune

    removed, kept = prune(everything=args.all)
    freed = sum(e.bytes for e in removed)
    if args.json:
        print_json({"cache": str(cache_root()), "removed": [e.to_dict() for e in removed], "freed_bytes": freed, "kept": [e.to_dict() for e in kept]})
        return
    print(
        f"removed {len(removed)} entries ({megabytes(freed)}) from {cache_root()}; kept {len(kept)}"
        + (f" ({', '.join(sorted({e.status for e in kept}))})" if kept else "")
    )


def add_commands(commands) -> None:
    """`cache` and its actions."""
    p = commands.add_parser(
        "cache",
        help="List, graph or prune the cache of models and measurements ($LEARNJAX_CACHE).",
        description="List, graph or prune the cache of models and measurements ($LEARNJAX_CACHE, else ~/.cache/learnjax).",
        epilog=EXAMPLES["cache"],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    add_command(
        actions, EXAMPLES, "list", "List the entries: size, and whether this version of the code reads them.", cmd_cache_list, runs_models=False
    )
    add_command(
        actions,
        EXAMPLES,
        "graph",
        "Show the entries as a graph: what each read, the seconds it took, and whether it is current.",
        cmd_cache_graph,
        runs_models=False,
    )
    p = add_command(actions, EXAMPLES, "prune", "Remove the entries that this version of the code never reads.", cmd_cache_prune, runs_models=False)
    p.add_argument("--all", action="store_true", help="remove every entry (they are computed again when needed)")

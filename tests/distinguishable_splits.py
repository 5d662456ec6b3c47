"""Labeled splits built so that dev and test disagree: a choice made on the
wrong split shows in the result. Pool, dev and test hold 1/2, 3/4 and 1/4 spam,
so a classifier that always says spam scores 3/4 on dev and 1/4 on test, one
that never does the reverse."""

from learnjax.data import messages


def with_spam_share(items, n: int, spam_share: float) -> tuple[messages.Message, ...]:
    spam = [m for m in items if m.label == messages.SPAM][: round(n * spam_share)]
    return tuple(spam + [m for m in items if m.label == messages.HAM][: n - len(spam)])


def spam_share_splits(n: int = 40) -> dict:
    """{"pool", "dev", "test"}: `n` real messages each, 1/2, 3/4 and 1/4 of them spam."""
    real = messages.labeled_splits()
    return {"pool": with_spam_share(real["pool"], n, 0.5), "dev": with_spam_share(real["dev"], n, 0.75),
            "test": with_spam_share(real["test"], n, 0.25)}

"""The store's clock: China Standard Time without a zone, to the second.

Why one function: the store keeps naive CST timestamps (what the command floor reads), while servers often
run on UTC. Every "now" that is written or compared with stored times comes from here, never from
datetime.now(), which would be eight hours off on such a server.
"""
from datetime import datetime, timedelta, timezone

CST = timezone(timedelta(hours=8))


def now_cst() -> datetime:
    return datetime.now(CST).replace(tzinfo=None, microsecond=0)

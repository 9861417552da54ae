"""How a pool's budget is split between the instances holding leases (pure functions, no I/O).

Max-min fairness ("water filling"): an instance that wants less than an even split gets what it
wants; what it leaves is split evenly between the hungrier ones. An instance never takes budget
another instance still holds: its grant is its fair target capped by what the others leave free, so
the shares written to storage never sum to more than the budget. A holder above its target gives
the excess back at its own next renewal, and the others pick it up at theirs.
"""

from __future__ import annotations

from collections.abc import Mapping


def waterfill(total: float, demands: Mapping[str, float]) -> dict[str, float]:
    """Max-min fair split of `total` between claimants with the given demands (>= 0)."""
    out: dict[str, float] = {}
    left = max(0.0, total)
    pending = sorted(demands.items(), key=lambda item: item[1])
    while pending:
        even = left / len(pending)
        name, demand = pending[0]
        if demand <= even:
            out[name] = max(0.0, demand)
            left -= out[name]
            pending.pop(0)
            continue
        for name, _ in pending:
            out[name] = even
        break
    return out


def grant(me: str, total: float, demands: Mapping[str, float], held: Mapping[str, float]) -> float:
    """The share `me` may hold now: its fair target among `demands` (which include `me`), capped by
    what the other holders' current shares (`held`) leave free."""
    target = waterfill(total, demands).get(me, 0.0)
    others = sum(share for name, share in held.items() if name != me)
    return max(0.0, min(target, total - others))

"""Pure planner rule: greedy assignment of searches to therapists."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence


# --------------------------------------------------------------------------- planner


@dataclass
class PlanResult:
    """therapist id → search ids in inquiry order; per search the therapists it went to."""

    by_therapist: dict[int, list[int]] = field(default_factory=dict)
    by_search: dict[int, list[int]] = field(default_factory=dict)


def plan_greedy(
    searches: Sequence[tuple[int, int]],
    candidates: Mapping[int, Sequence[int]],
    *,
    max_size: int,
    waiting_rank: Optional[Mapping[int, int]] = None,
    practice_of: Optional[Mapping[int, int]] = None,
) -> PlanResult:
    """Greedy regional plan.

    `searches`: (search id, remaining open-inquiry capacity) longest-waiting first;
    `candidates[search_id]`: eligible therapist ids, nearest first. Each search goes to its
    nearest therapists that still have room, at most `remaining` of them; a therapist takes
    at most `max_size` searches. Inquiries list their searches longest-waiting first.

    `practice_of[therapist_id]`: the practice (shared e-mail) a therapist belongs to. Each
    member is a candidate with its own profile, but a practice gets one inquiry at a time:
    once one member has searches, the other members of that practice take none."""
    result = PlanResult()
    practice_of = practice_of or {}
    asked: dict[int, int] = {}  # practice → the member that gets its inquiry
    rank = waiting_rank if waiting_rank is not None else {sid: i for i, (sid, _) in enumerate(searches)}
    for sid, remaining in searches:
        if remaining <= 0:
            continue
        chosen: list[int] = []
        for tid in candidates.get(sid, ()):
            bucket = result.by_therapist.get(tid)
            if bucket is not None and (len(bucket) >= max_size or sid in bucket):
                continue
            if tid in chosen:
                continue
            practice = practice_of.get(tid, tid)
            if asked.setdefault(practice, tid) != tid:
                continue
            result.by_therapist.setdefault(tid, []).append(sid)
            chosen.append(tid)
            if len(chosen) >= remaining:
                break
        if chosen:
            result.by_search[sid] = chosen
    for tid, sids in result.by_therapist.items():
        sids.sort(key=lambda s: rank.get(s, 0))
    return result

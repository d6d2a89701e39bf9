"""A synthetic file-organisation application, for the demo and the tests: FILER tasks whose right
folder is known, the rule-of-thumb agent it ran before recursa (right a bit more than half the time),
and the `Decision` table it writes, in its own column names (camelCase, as an ORM would make them).

The simulated user judges each decision as `FilerFormat.judge` does, with a little inconsistency,
so the outcome components in the table are what real users' reactions would look like on these tasks.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa

from recursa.decisions.formats import FilerFormat

# Folder -> (file name templates, extensions): the words in a name say where the file belongs.
FOLDER_FILES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "Finance/Invoices": (("invoice_{n}", "invoice-{month}-{year}", "bill_{n}", "scan_{n}"), (".pdf",)),
    "Finance/Taxes": (("tax_return_{year}", "tax-form-{n}", "w2_{year}", "scan_{n}"), (".pdf",)),
    "Photos/Holidays": (("beach_{n}", "holiday_{year}_{n}", "trip-{month}", "IMG_{n}"), (".jpg", ".png")),
    "Photos/Family": (("family_{n}", "birthday-{year}", "kids_{month}", "IMG_{n}"), (".jpg", ".png")),
    "Work/Reports": (("report_q{q}_{year}", "weekly-report-{n}", "summary_{month}", "scan_{n}"), (".docx", ".pdf")),
    "Work/Slides": (("pitch_deck_{n}", "slides-{month}", "keynote_{year}"), (".pptx",)),
    "Music": (("song_{n}", "track-{n}", "album_{year}"), (".mp3", ".flac")),
    "Code": (("script_{n}", "backup-{year}", "deploy_{n}"), (".py", ".sh")),
}
# Names like scan_12.pdf or IMG_7.jpg say too little: no agent can always place them.
FOLDERS = tuple(sorted(FOLDER_FILES))
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
NEW_FOLDER = "Misc/Unsorted"  # where the old agent dumps files it cannot place
FILER = FilerFormat()


@dataclass(frozen=True)
class FilingTask:
    """A file to file, the folder tree, and the folder the file really belongs in."""

    state: dict[str, Any]
    truth: dict[str, str]


def filing_tasks(count: int, seed: int) -> list[FilingTask]:
    """`count` tasks, reproducible from `seed`."""
    rng = random.Random(seed)
    tasks = []
    for _ in range(count):
        folder = rng.choice(FOLDERS)
        templates, extensions = FOLDER_FILES[folder]
        name = rng.choice(templates).format(n=rng.randint(1, 999), year=rng.randint(2015, 2026),
                                            month=rng.choice(MONTHS), q=rng.randint(1, 4)) + rng.choice(extensions)
        tasks.append(FilingTask({"file": {"name": name, "size_kb": rng.randint(4, 9000)}, "folders": list(FOLDERS)},
                                {"folder": folder}))
    return tasks


def heuristic_decision(task: FilingTask, rng: random.Random, skill: float = 0.55) -> dict[str, str]:
    """The old agent: the right folder with probability `skill`, else a sibling, a random folder or a new one."""
    right = task.truth["folder"]
    draw = rng.random()
    if draw < skill:
        return {"folder": right}
    siblings = [f for f in FOLDERS if f != right and f.split("/")[0] == right.split("/")[0]]
    if draw < skill + 0.15 and siblings:
        return {"folder": rng.choice(siblings)}
    if draw < 0.95:
        return {"folder": rng.choice([f for f in FOLDERS if f != right])}
    return {"folder": NEW_FOLDER}


def decision_table(metadata: sa.MetaData, name: str = "Decision") -> sa.Table:
    """The application's own table, as it would have created it."""
    return sa.Table(
        name, metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("agentType", sa.String(32), nullable=False),
        sa.Column("stateJson", sa.Text, nullable=False),
        sa.Column("decisionJson", sa.Text, nullable=False),
        sa.Column("modelVersion", sa.String(128)),
        sa.Column("userId", sa.String(64)),
        sa.Column("userFeedback", sa.Text),
        sa.Column("immediateScore", sa.Float),
        sa.Column("delayedScore", sa.Float),
        sa.Column("strategicScore", sa.Float),
        sa.Column("createdAt", sa.DateTime, nullable=False),
    )


# The mapping of `decision_table` for recursa's decisions config.
MAPPING = {
    "table": "Decision",
    "columns": {"id": "id", "agent_type": "agentType", "state": "stateJson", "decision": "decisionJson",
                "model_version": "modelVersion", "user_id": "userId", "feedback": "userFeedback",
                "created_at": "createdAt", "immediate": "immediateScore", "delayed": "delayedScore",
                "strategic": "strategicScore"},
}


def decision_row(row_id: int, task: FilingTask, decision: dict[str, str] | None, version: str, user: str,
                 created_at: datetime, delayed_known: bool = True, noise: float = 0.1) -> dict[str, Any]:
    """A row of the application's table: the decision and its user's reactions (the delayed outcome
    NULL while not yet known). Users are not perfectly consistent: with probability `noise` a right
    decision is still edited (immediate 0), and a kept file is moved later anyway (delayed -1).
    A malformed decision (None) is stored as JSON null."""
    scores = FILER.judge(decision, task.truth, task.state)
    right = decision is not None and decision["folder"] == task.truth["folder"]
    rng = random.Random(row_id)
    immediate = 0.0 if right and rng.random() < noise else scores.immediate
    delayed = -1.0 if rng.random() < noise else scores.delayed
    return {"id": row_id, "agentType": "FILER", "stateJson": json.dumps(task.state),
            "decisionJson": json.dumps(decision), "modelVersion": version, "userId": user,
            "userFeedback": None if right else f"moved to {task.truth['folder']}", "immediateScore": immediate,
            "delayedScore": delayed if delayed_known else None, "strategicScore": scores.strategic,
            "createdAt": created_at.replace(tzinfo=None)}


def seed_application(engine: sa.Engine, tasks: Sequence[FilingTask], seed: int, *, version: str = "heuristic-v0",
                     unobserved_share: float = 0.1, start: datetime | None = None) -> int:
    """Create the application's table and write one heuristic decision per task; the latest
    `unobserved_share` have no delayed outcome yet. Returns the number of rows."""
    metadata = sa.MetaData()
    table = decision_table(metadata)
    metadata.create_all(engine)
    rng = random.Random(seed)
    start = start or datetime(2026, 1, 1, tzinfo=timezone.utc)
    settled = int(len(tasks) * (1 - unobserved_share))
    rows = [decision_row(i + 1, task, heuristic_decision(task, rng), version, f"user{rng.randint(1, 50)}",
                         start + timedelta(minutes=i), delayed_known=i < settled) for i, task in enumerate(tasks)]
    with engine.begin() as conn:
        conn.execute(sa.insert(table), rows)
    return len(rows)

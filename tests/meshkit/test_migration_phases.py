"""Migrations follow expand/contract, so a release's schema change never breaks the release before
it while both run (a rolling deploy) and the new code never needs the contract step.

An expand migration (every one unless it says `PHASE = "contract"`) only adds: tables, nullable
columns or columns with a server default, indexes, triggers. It never drops, renames or alters a
column the previous release may read or write. Dropping what the code stopped using is a contract
migration of a later release. tests/e2e/test_rolling_deploy.py runs the services on both sides.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from meshkit.config import PROJECT_ROOT
from meshkit.services import SCHEMAS

MIGRATIONS = sorted(
    path for service in SCHEMAS for path in (PROJECT_ROOT / service / "migrations" / "versions").glob("*.py")
)
# op.* calls an expand migration may not make in upgrade().
BREAKING_OPS = {"drop_table", "drop_column", "drop_constraint", "rename_table", "alter_column"}
BREAKING_SQL = re.compile(
    r"\b(DROP\s+(TABLE|COLUMN)|RENAME\s+(TO|COLUMN)|SET\s+NOT\s+NULL|ALTER\s+COLUMN)\b", re.I
)


def _phase(tree: ast.Module) -> str:
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "PHASE" for t in targets):
                assert isinstance(node.value, ast.Constant)
                return str(node.value.value)
    return "expand"


def _call_name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def breaking_steps(source: str) -> list[str]:
    """What an expand migration's upgrade() does that the previous release could trip over."""
    tree = ast.parse(source)
    upgrade = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "upgrade")
    found = []
    for node in ast.walk(upgrade):
        if not isinstance(node, ast.Call):
            continue
        name = _call_name(node)
        if name in BREAKING_OPS:
            found.append(f"op.{name} (line {node.lineno})")
        if name == "add_column":
            column = next(
                (a for a in node.args if isinstance(a, ast.Call) and _call_name(a) == "Column"), None
            )
            keywords = {k.arg: k.value for k in column.keywords} if column else {}
            required = (
                isinstance(keywords.get("nullable"), ast.Constant) and keywords["nullable"].value is False
            )
            if required and "server_default" not in keywords:
                found.append(f"a NOT NULL column without a server default (line {node.lineno})")
        for arg in node.args:
            if (
                isinstance(arg, ast.Constant)
                and isinstance(arg.value, str)
                and BREAKING_SQL.search(arg.value)
            ):
                found.append(f"SQL {BREAKING_SQL.search(arg.value).group(0)!r} (line {node.lineno})")  # type: ignore[union-attr]
    return found


@pytest.mark.parametrize("path", MIGRATIONS, ids=lambda p: f"{p.parent.parent.parent.name}/{p.stem}")
def test_expand_migrations_only_add(path: Path) -> None:
    source = path.read_text()
    phase = _phase(ast.parse(source))
    assert phase in ("expand", "contract"), f"{path.name}: PHASE is {phase!r}"
    if phase == "expand":
        assert breaking_steps(source) == [], f"{path}: an expand migration must only add"


def test_the_check_sees_what_breaks_the_previous_release() -> None:
    def upgrade(body: str) -> str:
        return f"def upgrade() -> None:\n    {body}\n\n\ndef downgrade() -> None:\n    op.drop_table('t')\n"

    assert breaking_steps(upgrade("op.drop_column('t', 'c', schema='s')"))
    assert breaking_steps(upgrade("op.alter_column('t', 'c', new_column_name='d')"))
    assert breaking_steps(upgrade("op.add_column('t', sa.Column('c', sa.Text(), nullable=False))"))
    assert breaking_steps(upgrade("op.execute('ALTER TABLE s.t RENAME COLUMN a TO b')"))
    assert breaking_steps(upgrade("op.add_column('t', sa.Column('c', sa.Text(), nullable=True))")) == []
    assert (
        breaking_steps(
            upgrade("op.add_column('t', sa.Column('c', sa.Text(), nullable=False, server_default='x'))")
        )
        == []
    )
    assert breaking_steps(upgrade("op.create_index('ix', 't', ['c'])")) == []  # downgrade() is not judged

"""Security of the batch jobs, by scanning the source and by behaviour: YAML is only loaded safely,
nothing unpickles or evaluates data, no shell command is built from a string, paths stay inside the
roots the config names, and credentials in the config never reach logs or ``gold.runs``.

The scan reads the syntax tree (not text), so a docstring that mentions ``eval(`` is not a finding
and a call spelt over two lines is.
"""

from __future__ import annotations

import ast
import logging
import re
from pathlib import Path

import pytest
import yaml
from bad_inputs import GENERIC, LAYOUTS, SECRET, SECRET_URI, cases_for, ingested

from conftest import REPO_ROOT, TEST_SPARK, make_config
from hybridrec.catalog import image_check as ic
from hybridrec.catalog import reasons
from hybridrec.config import ConfigError, load_config
from hybridrec.runs import redact
from hybridrec.tables import TABLES, table_ref

SCANNED = ("lib", "jobs", "scripts", "bench")

# module (as imported) → functions that must never be called from this code base.
_FORBIDDEN_ATTRS = {
    "yaml": {"load", "load_all", "unsafe_load", "unsafe_load_all", "full_load", "full_load_all"},
    "pickle": {"load", "loads", "Unpickler"},
    "cPickle": {"load", "loads"},
    "cloudpickle": {"load", "loads"},
    "dill": {"load", "loads"},
    "joblib": {"load"},
    "marshal": {"load", "loads"},
    "shelve": {"open"},
    "os": {"system", "popen", "execl", "execlp", "execv", "execvp", "spawnl", "spawnv"},
    "torch": {"load"},
}
_FORBIDDEN_NAMES = {"eval", "exec", "__import__"}
_SUBPROCESS = {"run", "call", "check_call", "check_output", "Popen", "getoutput", "getstatusoutput"}


def _python_files() -> list[Path]:
    return sorted(p for d in SCANNED for p in (REPO_ROOT / d).rglob("*.py"))


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return "?"


def _aliases(tree: ast.AST) -> dict[str, str]:
    """Local name → module for ``import x as y`` and ``from x import f as g`` (as ``x.f``)."""
    out: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                out[a.asname or a.name] = a.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:
                out[a.asname or a.name] = f"{node.module}.{a.name}"
    return out


def findings(path: Path) -> list[str]:
    """Unsafe calls in one Python file, as ``file:line: what``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    aliases = _aliases(tree)
    out: list[str] = []
    rel = path.relative_to(REPO_ROOT) if REPO_ROOT in path.parents else path.name

    def report(node: ast.AST, what: str) -> None:
        out.append(f"{rel}:{getattr(node, 'lineno', 0)}: {what}")

    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        head, _, rest = name.partition(".")
        full = f"{aliases.get(head, head)}.{rest}" if rest else aliases.get(head, head)
        module, _, func = full.rpartition(".")
        if name in _FORBIDDEN_NAMES and name not in aliases:
            report(node, f"{name}()")
        if func in _FORBIDDEN_ATTRS.get(module.split(".")[-1], set()):
            report(node, f"{full}()")
        keywords = {k.arg: k.value for k in node.keywords}
        if module.split(".")[-1] == "yaml" and "Loader" in keywords:
            report(node, f"{full}(Loader=...)")
        shell = keywords.get("shell")
        if (
            isinstance(shell, ast.Constant)
            and shell.value is True
            or (shell is not None and not isinstance(shell, ast.Constant))
        ):
            report(node, f"{full}(shell=...)")
        if module == "subprocess" and func in _SUBPROCESS and node.args:
            if isinstance(node.args[0], (ast.Constant, ast.JoinedStr, ast.BinOp)):
                report(node, f"{full}() with a command string (use an argument list)")
        if func == "load" and module.split(".")[-1] in ("np", "numpy"):
            pickle = keywords.get("allow_pickle")
            if not (isinstance(pickle, ast.Constant) and pickle.value is False) and pickle is not None:
                report(node, f"{full}(allow_pickle=...)")
        if full.endswith("read_pickle"):
            report(node, f"{full}()")
    return out


@pytest.mark.unit
def test_the_scan_finds_what_it_looks_for(tmp_path: Path) -> None:
    """The scanner itself, on a file full of what it must report (and a docstring it must not)."""
    bad = tmp_path / "probe.py"
    source = (
        '"""eval(x) in a docstring is fine."""\n'
        "import yaml, pickle, subprocess, os\nimport yaml as y\nfrom pickle import loads as pl\n"
        "yaml.load(s)\ny.load(s, Loader=y.FullLoader)\npickle.loads(b)\npl(b)\neval('1')\n"
        "exec('x=1')\nsubprocess.run('ls ' + d, shell=True)\nsubprocess.check_output(f'ls {d}')\n"
        "os.system('ls')\nyaml.safe_load(s)\nsubprocess.run(['ls', d])\n"
    )
    bad.write_text(source, encoding="utf-8")
    got = findings(bad)
    lines = sorted(int(f.split(":")[1]) for f in got)
    assert lines == [5, 6, 6, 7, 8, 9, 10, 11, 11, 12, 13], got


@pytest.mark.unit
def test_no_unsafe_yaml_pickle_eval_or_shell_in_the_code_base() -> None:
    files = _python_files()
    assert len(files) > 40, "the scan must see the whole code base"
    problems = [f for path in files for f in findings(path)]
    assert problems == [], "\n".join(problems)


@pytest.mark.unit
def test_shell_scripts_do_not_eval() -> None:
    """``eval`` in a shell script runs whatever a variable holds."""
    hits = []
    for path in sorted((REPO_ROOT / "scripts").rglob("*.sh")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            if re.search(r"(^|[;&|(\s])eval\s", code) or "bash -c" in code or "sh -c" in code:
                hits.append(f"{path.relative_to(REPO_ROOT)}:{n}: {line.strip()}")
    assert hits == [], "\n".join(hits)


@pytest.mark.unit
@pytest.mark.parametrize(
    "text",
    [
        "spark: !!python/object/apply:os.system ['touch {pwned}']\n",
        "spark: !!python/object/new:subprocess.Popen [['touch', '{pwned}']]\n",
        "spark: !!python/name:os.system\n",
    ],
)
def test_a_config_with_python_tags_is_refused_not_run(tmp_path: Path, text: str) -> None:
    pwned = tmp_path / "pwned"
    conf = tmp_path / "evil.yaml"
    conf.write_text(text.format(pwned=pwned), encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(conf)
    assert not pwned.exists()


@pytest.mark.unit
def test_an_override_with_python_tags_is_refused(tmp_path: Path) -> None:
    conf = tmp_path / "ok.yaml"
    conf.write_text("{}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(conf, ["catalog.path=!!python/object/apply:os.getcwd []"])


@pytest.mark.unit
@pytest.mark.parametrize("ref", ["../../etc/passwd", "/etc/passwd", "sub/../../x.jpg", "..", "a\x00.jpg"])
def test_image_references_cannot_leave_the_root(tmp_path: Path, ref: str) -> None:
    root = tmp_path / "images"
    root.mkdir()
    assert ic.check_image(str(root), ref).status == ic.ESCAPES


@pytest.mark.unit
def test_every_table_lives_under_the_warehouse(tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    warehouse = Path(cfg.paths.warehouse)
    for spec in TABLES.values():
        path = Path(table_ref(cfg, spec).path)
        assert warehouse in path.parents, (spec.logical_name, path)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("text", "kept", "hidden"),
    [
        (f"MLflow at {SECRET_URI} failed", "https://alice:***@mlflow.example.com", SECRET),
        (
            "Wrong FS: s3a://AKIAIOSFODNN7:wJalrXUtnFEMI/K7MDENG@bucket/x.csv",
            "s3a://AKIAIOSFODNN7:***@",
            "wJalrXUtnFEMI",
        ),
        ("https://acct.blob.core.windows.net/c/f.csv?sv=2022&sig=abc%2Bdef&se=2030", "sv=2022&sig=***", "abc%2Bdef"),
        ("jdbc:postgresql://db:5432/x?user=app&password=hunter2", "password=***", "hunter2"),
        ("token dapi0123456789abcdef0123456789abcdef", "dapi***", "0123456789abcdef0123"),
    ],
)
def test_redact_hides_credentials_and_keeps_the_rest(text: str, kept: str, hidden: str) -> None:
    out = redact(text)
    assert kept in out and hidden not in out


@pytest.mark.unit
@pytest.mark.parametrize(
    "text", ["http://localhost:5000/api", "file:///data/x.csv", "user@example.com", "s3://bucket/k", ""]
)
def test_redact_leaves_plain_text_alone(text: str) -> None:
    assert redact(text) == text


# --- behaviour on the reliability ingest runs (Spark) ------------------------------------------------


@pytest.fixture(scope="module")
def runs(spark, tmp_path_factory):
    return {layout: ingested(spark, tmp_path_factory, layout) for layout in LAYOUTS}


@pytest.mark.spark
@pytest.mark.parametrize("layout", LAYOUTS)
def test_image_paths_that_leave_the_root_are_quarantined(runs, layout: str) -> None:
    run = runs[layout]
    escapes = [c.tag for c in cases_for(layout) if reasons.IMAGE_PATH_ESCAPES_ROOT in c.outcomes]
    assert {"img_escape_etc_passwd", "img_escape_absolute", "img_escape_symlink"} <= set(escapes)
    for tag in escapes:
        assert run.product_outcomes[tag] == [reasons.IMAGE_PATH_ESCAPES_ROOT], tag
    root = str(run.catalog.image_root) + "/"
    assert all(r["image_path"] is None or r["image_path"].startswith(root) for r in run.bronze_products.values())


@pytest.mark.spark
@pytest.mark.parametrize("layout", LAYOUTS)
def test_ingest_leaves_its_inputs_alone_and_writes_only_under_the_warehouse(runs, layout: str) -> None:
    run = runs[layout]
    assert run.inputs_after == run.inputs_before  # not a byte nor a timestamp changed
    assert run.top_level_after == ["job.yaml", "raw", "warehouse"]


@pytest.mark.spark
def test_credentials_in_the_config_reach_neither_logs_nor_gold_runs(runs) -> None:
    run = runs[GENERIC]
    assert SECRET in run.cfg.als.mlflow_tracking_uri  # the run really had them
    assert run.logs, "the job's log lines were captured"
    assert not [line for line in run.logs if SECRET in line]
    assert SECRET not in repr(run.run_row)


@pytest.mark.spark
def test_a_failed_run_quoting_a_credential_uri_is_recorded_redacted(spark, tmp_path: Path, caplog) -> None:
    """A job that fails with a message quoting a URI with a password (a storage error naming the
    path, say) leaves the failure in gold.runs without the password."""
    from hybridrec.errors import MissingInputError
    from hybridrec.job import run_job
    from hybridrec.tables import RUNS, read_table

    conf = tmp_path / "job.yaml"
    conf.write_text(
        yaml.safe_dump({"spark": dict(TEST_SPARK), "paths": {"warehouse": str(tmp_path / "wh")}}),
        encoding="utf-8",
    )

    def main(ctx) -> None:
        raise MissingInputError(f"catalog.path: {SECRET_URI}/catalog.csv does not exist")

    with caplog.at_level(logging.ERROR, logger="hybridrec.job"):
        assert run_job("ingest", main, ["--config", str(conf)]) == 1
    assert "alice:***@mlflow.example.com" in caplog.text and SECRET not in caplog.text
    row = read_table(spark, table_ref(load_config(conf), RUNS)).first()
    assert row["status"] == "failed" and "alice:***@mlflow.example.com" in row["message"]
    assert SECRET not in row["message"]


def test_a_failed_mlflow_log_does_not_quote_the_password(caplog, monkeypatch) -> None:
    """Training logs to MLflow at the configured URI; when that fails, the warning names the URI
    (what on-call needs) without its credentials."""
    from hybridrec.config import TrainConfig
    from hybridrec.tracking import log_run

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # fail at once, not after back-off
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    uri = "http://alice:" + SECRET + "@127.0.0.1:9/"  # nothing listens on the discard port
    with caplog.at_level(logging.WARNING, logger="hybridrec.tracking"):
        assert log_run(TrainConfig(mlflow_tracking_uri=uri, mlflow_experiment="exp"), ".", "run") is None
    assert "alice:***@127.0.0.1" in caplog.text and SECRET not in caplog.text


@pytest.mark.unit
@pytest.mark.parametrize(
    "key, value",
    [
        ("schema_prefix", "x; DROP TABLE t; --"),
        ("schema_prefix", "../../etc/"),
        ("uc_catalog", "main`.`other"),
        ("uc_catalog", "1main"),
    ],
)
def test_table_names_from_the_config_are_plain_identifiers(tmp_path: Path, key: str, value: str) -> None:
    conf = tmp_path / "c.yaml"
    conf.write_text(yaml.safe_dump({"tables": {key: value}}), encoding="utf-8")
    with pytest.raises(ConfigError, match=f"tables.{key}"):
        load_config(conf)
    assert load_config(conf, [f"tables.{key}=hybridrec_dev_" if key == "schema_prefix" else "tables.uc_catalog=main"])

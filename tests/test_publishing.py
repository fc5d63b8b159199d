"""The project is published as an open-source research book: licence, citation, changelog, CI workflow, and
notebooks that install what they need when opened outside the repository (Colab).

- ``LICENSE`` is the licence ``pyproject.toml`` names; ``CITATION.cff`` has the package's version and asks
  readers to cite the paper (``dong2022rcl`` of ``book/references.bib``) too.
- ``.github/workflows/`` runs ``make test``, builds the book (smoke profile on pull requests, cpu on main) with
  runs and results cached by code version, opens it in the browser test and deploys it from main only; both
  files pass their schemas (bundled with check-jsonschema, so offline).
- Every notebook in ``notebooks/`` starts with the same install cell (removed from the book): it does nothing
  where ``rcl`` imports, and elsewhere installs it from ``repository.url`` of ``book/_config.yml``.
"""

from __future__ import annotations

import builtins
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from paths import ROOT

import rcl

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
CHECK_JSONSCHEMA = Path(sys.executable).with_name("check-jsonschema")


def _config() -> dict:
    return yaml.safe_load((ROOT / "book" / "_config.yml").read_text())


def _bib_entry(key: str) -> dict[str, str]:
    """The fields of one entry of book/references.bib (one field per line, as the file writes them)."""
    text = (ROOT / "book" / "references.bib").read_text()
    body = re.search(r"@\w+\{" + re.escape(key) + r",\n(.*?)\n\}", text, re.DOTALL)
    assert body, f"no entry {key} in references.bib"
    fields = dict(re.findall(r"^\s*(\w+)\s*=\s*\{(.*)\},?\s*$", body[1], re.MULTILINE))
    return {k: fields[k].replace("{\\'e}", "é").replace("{", "").replace("}", "") for k in fields}


def test_licence_is_the_one_pyproject_names():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^license = \{ text = "MIT" \}$', pyproject, re.MULTILINE)  # tomllib is Python 3.11+
    licence = (ROOT / "LICENSE").read_text()
    assert licence.startswith("MIT License\n") and "Permission is hereby granted, free of charge" in licence


def test_citation_has_the_package_version_and_licence():
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert str(citation["version"]) == rcl.__version__
    assert citation["license"] == "MIT" and citation["type"] == "software"


def test_citation_asks_readers_to_cite_the_paper_too():
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    bib = _bib_entry("dong2022rcl")
    papers = [r for r in citation.get("references", []) if r["title"] == bib["title"]]
    assert len(papers) == 1, f"CITATION.cff's references do not list {bib['title']!r}"
    paper = papers[0]
    assert [a["family-names"] for a in paper["authors"]] == [a.split(",")[0] for a in bib["author"].split(" and ")]
    assert str(paper["year"]) == bib["year"] and f"{paper['start']}--{paper['end']}" == bib["pages"]
    assert "please also cite the paper" in " ".join(citation["message"].split())


def test_the_docs_give_each_studys_time_as_the_profile_table_does():
    """The time a study takes at the cpu profile has one home (rcl.profiles.STUDY_TIMES, which the command-line help
    reads); the prose that repeats it says the same."""
    from rcl.profiles import STUDY_TIMES

    def words(path):
        text = path.read_text()
        if path.suffix == ".ipynb":
            text = " ".join("".join(c["source"]) for c in json.loads(text)["cells"])
        return " ".join(text.split())

    docs = {"sensitivity": ["README.md", "Makefile", "book/studies/README.md", "notebooks/06_sensitivity.ipynb"],
            "backbones": ["README.md", "Makefile", "book/studies/README.md"]}
    for study, paths in docs.items():
        for path in paths:
            assert STUDY_TIMES[study] in words(ROOT / path), f"{path} does not give {study}'s time as STUDY_TIMES"
    # and the README's count of the sensitivity study's pre-trainings is the plan's
    from rcl import sensitivity

    distinct = sensitivity._evaluations(sensitivity.plan("cpu"))
    settings = int((distinct.method != "init").sum())  # random init trains nothing
    seeds = len(sensitivity.seeds_of("cpu"))
    assert f"about {settings * seeds} pre-trainings ({settings} settings" in words(ROOT / "README.md")
    for command in ("sensitivity", "backbones"):
        out = subprocess.run([sys.executable, "-m", "rcl", command, "--help"], capture_output=True, text=True,
                             cwd=ROOT, check=True).stdout
        assert STUDY_TIMES[command] in " ".join(out.split())


def test_changelog_names_the_current_version():
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert re.search(rf"^## \[?{re.escape(rcl.__version__)}\]?", changelog, re.MULTILINE)


@pytest.mark.parametrize(
    "schema, path",
    [("vendor.citation-file-format", ROOT / "CITATION.cff"), *[("vendor.github-workflows", w) for w in WORKFLOWS]],
    ids=lambda v: v.name if isinstance(v, Path) else v,
)
def test_files_pass_their_schemas(schema, path):
    """What ``make lint`` checks, with the schema check-jsonschema bundles (no network)."""
    proc = subprocess.run([str(CHECK_JSONSCHEMA), "--builtin-schema", schema, "--default-filetype", "yaml", str(path)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _steps(job: dict) -> list[dict]:
    return job.get("steps", [])


def _runs(job: dict) -> str:
    return "\n".join(s.get("run", "") for s in _steps(job))


def _uses(job: dict, action: str) -> list[dict]:
    return [s for s in _steps(job) if s.get("uses", "").split("@")[0] == action]


def test_workflow_tests_builds_and_deploys_the_book():
    assert WORKFLOWS, "no workflow in .github/workflows"
    workflow = yaml.safe_load(WORKFLOWS[0].read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads the key `on` as True
    assert triggers["push"]["branches"] == ["main"] and "pull_request" in triggers
    assert workflow["permissions"] == {"contents": "read"}
    jobs = workflow["jobs"]
    tests = [j for j in jobs.values() if re.search(r"^make test$", _runs(j), re.MULTILINE)]
    assert tests and "make lint" in _runs(tests[0])
    book = next(j for j in jobs.values() if "make book PROFILE=" in _runs(j))
    profile = book["env"]["PROFILE"]
    assert "pull_request" in profile and "'smoke'" in profile and "'cpu'" in profile
    assert "apt-get install" in _runs(book) and "chromium" in _runs(book)
    assert "RCL_BOOK_HTML=book/_build/html" in _runs(book) and "tests/test_browser.py" in _runs(book)
    cached = [s["with"] for s in _uses(book, "actions/cache")]
    runs = next(c for c in cached if "runs" in c["path"].split() and "results" in c["path"].split())
    assert "hashFiles(" in runs["key"] and "rcl/" in runs["key"] and "notebooks/" in runs["key"]
    on_main = "github.event_name == 'push' && github.ref == 'refs/heads/main'"
    (upload,) = _uses(book, "actions/upload-pages-artifact")
    assert upload["if"] == on_main and upload["with"]["path"] == "book/_build/html"
    deploy = next(j for j in jobs.values() if _uses(j, "actions/deploy-pages"))
    assert deploy["if"] == on_main and deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert deploy["environment"]["name"] == "github-pages" and "book" in deploy["needs"]


# The install cell: the first cell of every notebook.


def _install_cell(notebook: Path) -> dict:
    return json.loads(notebook.read_text())["cells"][0]


def _run_install_cell(source: str, rcl_importable: bool) -> list[tuple[str, str]]:
    """Run the cell as IPython would (its magics through ``get_ipython``); returns the magics it ran, their
    ``{name}`` expanded as IPython expands them. ``rcl`` fails to import unless ``rcl_importable``."""
    from IPython.core.inputtransformer2 import TransformerManager

    magics: list[tuple[str, str]] = []
    namespace: dict = {}

    class Shell:
        def run_line_magic(self, name, line):
            magics.append((name, line.format_map(namespace)))

        run_cell_magic = system = run_line_magic

    def importer(name, *args, **kwargs):
        if not rcl_importable and name.split(".")[0] == "rcl":
            raise ModuleNotFoundError(f"No module named {name!r}")
        return builtins.__import__(name, *args, **kwargs)

    namespace.update(__builtins__={**vars(builtins), "__import__": importer}, get_ipython=Shell)
    exec(TransformerManager().transform_cell(source), namespace)
    return magics


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_notebook_starts_with_the_install_cell(notebook):
    cell = _install_cell(notebook)
    first = _install_cell(NOTEBOOKS[0])
    assert cell["cell_type"] == "code" and cell["metadata"].get("tags") == ["remove-cell"], "not the install cell"
    assert cell["source"] == first["source"], f"the install cell differs from {NOTEBOOKS[0].name}'s"
    assert "import rcl" in "".join(cell["source"])


def test_install_cell_installs_from_the_books_repository_url():
    source = "".join(_install_cell(NOTEBOOKS[0])["source"])
    (given,) = re.findall(r'^RCL_GIT_URL = "(.*)"', source, re.MULTILINE)
    assert given == (_config()["repository"]["url"] or ""), "RCL_GIT_URL must be repository.url of book/_config.yml"


def test_install_cell_does_nothing_where_rcl_imports():
    assert _run_install_cell("".join(_install_cell(NOTEBOOKS[0])["source"]), rcl_importable=True) == []


def test_install_cell_elsewhere_installs_rcl_from_the_repository_or_says_what_is_missing():
    source = "".join(_install_cell(NOTEBOOKS[0])["source"])
    with pytest.raises(ImportError, match="rcl is not installed"):
        _run_install_cell(re.sub(r'(?m)^RCL_GIT_URL = ".*"', 'RCL_GIT_URL = ""', source), rcl_importable=False)
    url = "https://github.com/example-org/rcl"
    magics = _run_install_cell(re.sub(r'(?m)^RCL_GIT_URL = ".*"', f'RCL_GIT_URL = "{url}"', source), False)
    assert magics == [("pip", f'install --quiet "rcl @ git+{url}"')]


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_install_cell_runs_silently_under_papermill(notebook, smoke_dir):
    """In the repository the executed install cell printed nothing and raised nothing."""
    cell = _install_cell(smoke_dir / notebook.name)
    assert cell["source"] == _install_cell(notebook)["source"], "executed copy older than the notebook"
    assert cell["outputs"] == [] and cell["execution_count"] == 1

"""The rendered book, opened page by page in headless Chromium, works offline and shows everything.

For every HTML page of the book (served from 127.0.0.1) the test checks that
- no console error or uncaught exception is logged, and nothing fails to load;
- no request leaves 127.0.0.1: the book, MathJax and its fonts included, works without a network;
- every image loads, and every link into the book points to an existing file and, with ``#anchor``, to an
  existing element of that page;
- every math element is typeset by MathJax, without a TeX error, and no raw ``\\(``, ``\\[`` or ``$$`` is
  left in the text;
- on notebook pages, every figure of a shown cell output is visible, and each ipywidgets explorer has its
  static fallback visible: the widget's own output (its fallback image or text) when shown, else, when the
  output is removed from the book, a figure in the next code cell;
- every notebook of ``notebooks/`` has its page, and it offers its executed ``.ipynb`` for download (a text
  page its source);
- launch buttons (Binder, Colab) exist only while ``repository.url`` of ``book/_config.yml`` is set, and then
  each opens, on the repository's branch, the repository's notebook of its page. A second test builds the
  notebooks' pages with a repository URL set and with it empty, and checks both.

A page that only redirects (``index.html``) is not opened: the file it points to must exist. A full-page
screenshot of each other page goes to ``build/browser-screenshots/`` (or ``$RCL_SCREENSHOTS``), named
after the page's path, for review by eye.

The book is built from the smoke notebooks (``$RCL_SMOKE_NOTEBOOKS``, as ``make test`` sets it, else they are
executed here); ``RCL_BOOK_HTML=book/_build/html`` checks an already built book instead. The test needs
Debian's ``chromium`` (or ``$RCL_CHROMIUM``) and is skipped without it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, unquote, urljoin, urlsplit

import browser
import pytest
import yaml
from paths import ROOT, path_from_env

from rcl import notebooks

SOURCES = notebooks.notebook_paths()
CHROMIUM = browser.find_chromium()
REDIRECT = re.compile(r'<meta http-equiv="refresh" content="\d+; *url=([^"]+)"', re.IGNORECASE)

# Waits for images, MathJax's first typesetting and web fonts, then reports what the checks need.
INSPECT = r"""(async () => {
  const images = [...document.images];
  images.forEach(i => { i.loading = 'eager'; });
  await Promise.all(images.filter(i => !i.complete).map(i => new Promise(done => {
    i.addEventListener('load', done); i.addEventListener('error', done); setTimeout(done, 10000);
  })));
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  await document.fonts.ready;
  const shown = e => {
    const r = e.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && e.checkVisibility({opacityProperty: true, visibilityProperty: true});
  };
  const shownImage = i => i.complete && i.naturalWidth > 0 && shown(i);
  const rawMath = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT, {acceptNode: n =>
    n.parentElement.closest('pre, code, script, style, textarea, mjx-container') ? NodeFilter.FILTER_REJECT
                                                                                 : NodeFilter.FILTER_ACCEPT});
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const m = n.data.match(/\\\(|\\\[|\$\$|\\begin\{/);
    if (m) rawMath.push(n.data.slice(Math.max(0, m.index - 30), m.index + 50).trim());
  }
  return {
    brokenImages: images.filter(i => !i.complete || i.naturalWidth === 0).map(i => i.getAttribute('src')),
    links: [...new Set([...document.querySelectorAll('a[href]')].map(a => a.href))],
    ids: [...document.querySelectorAll('[id]')].map(e => e.id)
      .concat([...document.querySelectorAll('a[name]')].map(a => a.name)),
    math: document.querySelectorAll('.math').length,
    mathJax: !!(window.MathJax && MathJax.startup),
    untypeset: [...document.querySelectorAll('.math')].filter(e => !e.querySelector('mjx-container'))
      .map(e => e.textContent.trim().slice(0, 80)),
    texErrors: [...document.querySelectorAll('mjx-merror')]
      .map(e => e.getAttribute('data-mjx-error') || e.textContent.slice(0, 80)),
    rawMath: rawMath,
    fontErrors: [...document.fonts].filter(f => f.status === 'error').map(f => f.family),
    downloads: [...document.querySelectorAll('.dropdown-download-buttons a')].map(a => a.href),
    launchGroups: document.querySelectorAll('.dropdown-launch-buttons').length,
    launches: [...document.querySelectorAll('.dropdown-launch-buttons a')].map(a => a.getAttribute('href') || ''),
    cells: [...document.querySelectorAll('div.cell')].map(c => {
      const out = c.querySelector('.cell_output');
      return {
        images: out ? [...out.querySelectorAll('img')].filter(shownImage).length : 0,
        loaded: out ? [...out.querySelectorAll('img')].filter(i => i.complete && i.naturalWidth > 0).length : 0,
        text: out && shown(out) ? out.innerText.trim().slice(0, 80) : '',
      };
    }),
  };
})()"""


@pytest.fixture(scope="session")
def book_html(request) -> Path:
    """The rendered book: ``$RCL_BOOK_HTML``, else the book built from the smoke notebooks (conftest)."""
    given = path_from_env("RCL_BOOK_HTML")
    if given:
        assert (given / "index.html").exists(), f"RCL_BOOK_HTML={given} holds no index.html"
        return given
    return request.getfixturevalue("smoke_book")


def _event_problems(events: list[dict]) -> list[str]:
    """Console errors, uncaught exceptions, requests to other hosts and failed loads, from DevTools events."""
    problems, urls = [], {}
    for event in events:
        method, p = event["method"], event.get("params", {})
        if method.startswith("Network.") and urlsplit(urls.get(p.get("requestId"), "")).path == "/favicon.ico":
            continue  # the browser's own guess at the server's icon, not a request of the book
        if method == "Runtime.exceptionThrown":
            details = p["exceptionDetails"]
            problems.append(f"exception: {details.get('exception', {}).get('description') or details['text']}")
        elif method == "Runtime.consoleAPICalled" and p["type"] in ("error", "assert"):
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in p["args"])
            problems.append(f"console.{p['type']}: {text}")
        elif method == "Log.entryAdded" and p["entry"]["level"] == "error" and p["entry"]["source"] != "network":
            problems.append(f"console error ({p['entry']['source']}): {p['entry']['text']}")
        elif method == "Network.requestWillBeSent":
            url = urls[p["requestId"]] = p["request"]["url"]
            parts = urlsplit(url)
            if parts.scheme not in ("data", "blob", "about") and parts.hostname != "127.0.0.1":
                problems.append(f"request to another host (the book must work offline): {url}")
        elif method == "Network.responseReceived" and p["requestId"] in urls and p["response"]["status"] >= 400:
            problems.append(f"HTTP {p['response']['status']} for {p['response']['url']}")
        elif method == "Network.loadingFailed" and p["requestId"] in urls:
            url = urls[p["requestId"]]
            if urlsplit(url).hostname == "127.0.0.1":
                problems.append(f"failed to load {url}: {p['errorText']}")
    return problems


def _page_problems(found: dict) -> list[str]:
    """Broken images and math that MathJax did not typeset, from what :data:`INSPECT` found."""
    problems = [f"broken image: {src}" for src in found["brokenImages"]]
    if found["math"] and not found["mathJax"]:
        problems.append(f"{found['math']} math elements but MathJax did not load")
    problems += [f"math not typeset: {text}" for text in found["untypeset"]]
    problems += [f"TeX error: {text}" for text in found["texErrors"]]
    problems += [f"raw TeX left in the text: {text!r}" for text in found["rawMath"]]
    problems += [f"font failed to load: {family}" for family in found["fontErrors"]]
    return problems


def _notebook_problems(notebook: Path, cells: list[dict]) -> list[str]:
    """Figures of shown outputs visible, and each widget's static fallback visible (see the module docstring)."""
    nb = json.loads(notebook.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code" and "remove-cell" not in c["metadata"].get("tags", [])]
    if len(code) != len(cells):
        return [f"{len(code)} code cells in {notebook.name} but {len(cells)} on the page"]
    problems = []
    for k, (cell, shown) in enumerate(zip(code, cells)):
        name = f"cell {cell.get('id', k)}"
        outputs = [o.get("data", {}) for o in cell.get("outputs", [])]
        tags = cell["metadata"].get("tags", [])
        removed = "remove-output" in tags
        figures = sum(any(m.startswith("image/") for m in data) for data in outputs)
        folded = "hide-output" in tags or "hide-cell" in tags  # behind a toggle: loaded, not yet visible
        there = shown["loaded"] if folded else shown["images"]
        if not removed and there < figures:
            problems.append(f"{name}: {figures} figures in its output, {there} {'loaded' if folded else 'visible'}")
        if not any("application/vnd.jupyter.widget-view+json" in data for data in outputs):
            continue
        if removed:
            following = cells[k + 1] if k + 1 < len(cells) else {"images": 0}
            if not following["images"]:
                problems.append(f"{name}: widget output removed, but the next code cell shows no static figure")
        elif not (shown["images"] or shown["text"]):
            problems.append(f"{name}: the widget's static fallback is not visible")
    return problems


def _link_problems(page: str, links: list[str], base: str, html: Path, ids: dict[str, set[str]]) -> list[str]:
    """Links into the book: the target file exists and, for an HTML page with ``#anchor``, holds that id."""
    problems = []
    for link in links:
        parts = urlsplit(link)
        if not link.startswith(base):
            continue
        target = unquote(parts.path[len(urlsplit(base).path) :]) or "index.html"
        if target.endswith("/"):
            target += "index.html"
        if not (html / target).is_file():
            problems.append(f"broken link: {link} (no file {target})")
        elif parts.fragment and target in ids and unquote(parts.fragment) not in ids[target]:
            problems.append(f"broken link: {link} (no id {unquote(parts.fragment)!r} on {target})")
    return [f"{page}: {p}" for p in problems]


def _download_problems(page: str, downloads: list[str], base: str, html: Path) -> list[str]:
    """A page built from a source offers it for download (``_sources``): a notebook page its ``.ipynb``. That
    the file is there is checked with the page's other links."""
    stem = Path(page).with_suffix("")
    notebook = html / "_sources" / stem.with_suffix(".ipynb")
    sources = [notebook] if notebook.is_file() else sorted((html / "_sources" / stem.parent).glob(f"{stem.name}.*"))
    if not sources:
        return []  # a generated page (search, index of terms): nothing to download
    wanted = base + "_sources/" + sources[0].relative_to(html / "_sources").as_posix()
    return [] if wanted in downloads else [f"no download button for {wanted} (downloads: {downloads})"]


def _launch_problems(config: dict, launches: list[str], groups: int, notebook: str | None) -> list[str]:
    """Launch buttons as a book's ``_config.yml`` (``config``) asks: none while ``repository.url`` is empty or
    on a page that is no notebook; on a notebook page (``notebook``: its path in the book, no suffix), one link
    per configured service (Binder, Colab), each opening, on the configured branch of that repository, this
    page's notebook in the repository's ``notebooks/``."""
    repository, buttons = config.get("repository") or {}, config.get("launch_buttons") or {}
    if not repository.get("url") or notebook is None:
        why = "repository.url is empty" if not repository.get("url") else "the page is no notebook"
        return [f"launch buttons although {why}: {launches}"] if launches or groups else []
    org, repo = urlsplit(repository["url"]).path.strip("/").split("/")[-2:]
    branch = repository.get("branch") or "main"
    path = "/".join(p for p in [(repository.get("path_to_book") or "").strip("/"), f"{notebook}.ipynb"] if p)
    ui = {"jupyterlab": "lab/tree", "classic": "tree"}[buttons.get("notebook_interface", "classic")]
    services = {urlsplit(buttons[k]).hostname: name for k, name in [("binderhub_url", "Binder"), ("colab_url", "Colab")]
                if buttons.get(k)}  # fmt: skip
    problems, seen = [], []
    if ROOT / path not in SOURCES:  # e.g. book/notebooks/NAME.ipynb: an executed copy, not in the repository
        problems.append(f"the launch buttons open {path}, which is no notebook of the repository's notebooks/")
    for link in launches:
        parts = urlsplit(link)
        service = services.get(parts.hostname) if parts.scheme == "https" else None
        seen.append(service)
        if service == "Binder":
            query = parse_qs(parts.query)
            ok = parts.path == f"/v2/gh/{org}/{repo}/{branch}" and query == {"urlpath": [f"{ui}/{path}"]}
        elif service == "Colab":
            ok = parts.path == f"/github/{org}/{repo}/blob/{branch}/{path}" and not parts.query
        else:
            ok = False
        if not ok:
            problems.append(f"launch link {link!r} does not open {path} of {org}/{repo} at {branch}")
    if sorted(seen, key=str) != sorted(services.values()):
        problems.append(f"launch links for {seen}, expected one each for {sorted(services.values())}")
    return problems


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason=browser.SKIP_MESSAGE)
def test_book_pages_in_browser(book_html):
    """Every page opens in headless Chromium without a problem (the checks are listed at the top)."""
    shots = path_from_env("RCL_SCREENSHOTS") or ROOT / "build" / "browser-screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    pages = sorted(p.relative_to(book_html).as_posix() for p in book_html.rglob("*.html") if "_static" not in p.parts)
    assert "index.html" in pages
    missing = [p.name for p in SOURCES if f"notebooks/{p.stem}.html" not in pages]
    assert not missing, f"notebooks without a page in the book: {missing}"
    config = yaml.safe_load((ROOT / "book" / "_config.yml").read_text())
    problems, links, ids = [], {}, {}
    with browser.serve(book_html) as base, browser.Chromium(CHROMIUM) as chrome:
        for page in pages:
            redirect = REDIRECT.search((book_html / page).read_text())
            if redirect:  # jupyter-book's index.html: only its target is checked (it is a page of its own)
                links[page], ids[page] = [urljoin(base + page, redirect[1])], set()
                continue
            chrome.open(base + page)
            found = chrome.evaluate(INSPECT)
            chrome.screenshot(shots / (page.removesuffix(".html").replace("/", "__") + ".png"))
            found_here = _event_problems(chrome.take_events()) + _page_problems(found)
            source = book_html / "_sources" / Path(page).with_suffix(".ipynb")
            if source.exists():
                found_here += _notebook_problems(source, found["cells"])
            found_here += _download_problems(page, found["downloads"], base, book_html)
            notebook = Path(page).with_suffix("").as_posix() if source.exists() else None
            found_here += _launch_problems(config, found["launches"], found["launchGroups"], notebook)
            problems += [f"{page}: {p}" for p in found_here]
            links[page], ids[page] = found["links"], set(found["ids"])
        for page in pages:
            problems += _link_problems(page, links[page], base, book_html, ids)
    assert not problems, f"{len(problems)} problems in the rendered book:\n" + "\n".join(problems)


@pytest.fixture(scope="session", params=["https://github.com/example-org/rcl", ""], ids=["url", "no-url"])
def notebook_pages(request, tmp_path_factory) -> tuple[Path, dict]:
    """The notebooks' pages alone, built with ``book/_config.yml`` but ``repository.url`` set to the parameter:
    the HTML folder and the configuration. The notebooks are the unexecuted sources (the buttons do not depend
    on outputs), so the build takes seconds."""
    book = tmp_path_factory.mktemp("launch-book") / "book"
    shutil.copytree(ROOT / "book", book, ignore=shutil.ignore_patterns("_build", "notebooks", "_toc.yml", "*.md"))
    config = yaml.safe_load((book / "_config.yml").read_text())
    config["repository"]["url"] = request.param
    (book / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    (book / "notebooks").mkdir()
    for p in SOURCES:
        shutil.copy(p, book / "notebooks" / p.name)
    (book / "start.md").write_text("# The notebooks\n")
    toc = {"format": "jb-book", "root": "start", "chapters": [{"file": f"notebooks/{p.stem}"} for p in SOURCES]}
    (book / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))
    jb = Path(sys.executable).with_name("jupyter-book")
    proc = subprocess.run([str(jb), "build", str(book)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return book / "_build" / "html", config


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason=browser.SKIP_MESSAGE)
def test_launch_and_download_buttons_follow_the_repository_url(notebook_pages):
    """With a repository URL, every notebook page has well-formed Binder and Colab links to the repository's
    notebook; without one, no page has launch buttons. Every notebook page offers its download either way."""
    html, config = notebook_pages
    pages = ["start.html", *(f"notebooks/{p.stem}.html" for p in SOURCES)]
    problems, launches = [], 0
    with browser.serve(html) as base, browser.Chromium(CHROMIUM) as chrome:
        for page in pages:
            chrome.open(base + page)
            found = chrome.evaluate(INSPECT)
            notebook = Path(page).with_suffix("").as_posix() if page != "start.html" else None
            found_here = _download_problems(page, found["downloads"], base, html)
            found_here += _launch_problems(config, found["launches"], found["launchGroups"], notebook)
            problems += [f"{page}: {p}" for p in found_here]
            launches += len(found["launches"])
    assert not problems, f"{len(problems)} problems with the buttons:\n" + "\n".join(problems)
    assert launches == (2 * len(SOURCES) if config["repository"]["url"] else 0)

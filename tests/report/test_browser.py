"""The report and the live page in a real browser: Playwright drives the distribution's
Chromium (/usr/bin/chromium, installed by ``make install``; Playwright's own browser download is
not used), headless. Not skipped when the browser is missing: the test fails and says so."""

from __future__ import annotations

import os
import re
import shutil
import socket
import time
from pathlib import Path

import pytest

from ftscale.report.build import build_report
from ftscale.report.live import LiveStudy
from ftscale.report.serve import LiveServer
from ftscale.study.plan import plan_study
from ftscale.study.store import RunStore
from ftscale.testing.simulated import simulated_run

from .test_live import HASHES, finish_runs, live_study

CHROMIUM = os.environ.get("FTSCALE_CHROMIUM", "/usr/bin/chromium")
#: Chromium as root in a sandboxless container, with no network: no sandbox, no GPU, and none
#: of the background connections (updates, sync) the closed network would refuse.
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists() or shutil.which(CHROMIUM), (
        f"{CHROMIUM} is missing: `make install` installs Debian's chromium (apt-get install chromium)"
    )
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    p = ctx.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda e: errors.append(str(e)))
    yield p
    ctx.close()
    assert not errors, f"script errors on the page: {errors}"


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A simulated study (18 runs): 16 finished, one failed, one pending."""
    study = live_study()
    tmp = tmp_path_factory.mktemp("browser")
    db = tmp / "s.db"
    with RunStore(db) as store:
        store.add_runs((r.run_key, r.spec) for r in plan_study(study, HASHES))
        finish_runs(store, 16)
        finish_runs(store, 1, fail=True)
    return study, db


def test_report_shows_the_answer_and_a_figure(page, stored):
    study, db = stored
    with RunStore(db) as store:
        out = build_report(study, store, db.parent / "report", data_hashes=HASHES)
    page.goto((out / "report.html").as_uri())
    answer = page.inner_text("#answer")
    assert re.search(r"use (FMT|LoRA) on sim-1e7 with 400 examples", answer)
    assert "P(best)" in answer and "(95% interval)" in answer
    img = page.locator("#answer-figure img")
    img.wait_for()
    # a figure that really decoded: a PNG the browser drew, not a broken image
    assert page.evaluate("(i) => i.complete && i.naturalWidth > 100", img.element_handle())
    # the first screen (1280 x 900) holds the answer, its figure and what to run next
    for sel in ("#answer", "#answer-figure img", "#todo h3"):
        box = page.locator(sel).first.bounding_box()
        assert box is not None and box["y"] + box["height"] <= 900, sel
    # the details are folded: the tables take no room until opened
    assert page.locator("details").count() >= 5
    assert not page.locator("details table").first.is_visible()


def test_live_page_follows_the_store_without_reload(page, stored):
    study, db = stored
    live = LiveStudy(study, db, interval=0.2, data_hashes=HASHES)
    server = LiveServer(live).start()
    try:
        page.goto(server.url)
        page.wait_for_function("document.getElementById('done-count') !== null")
        with RunStore(db) as store:
            done = store.counts()["done"]
        assert page.inner_text("#done-count") == str(done)
        assert page.inner_text("#finished-count") == str(done + 1)  # the failed one counts
        # progress: a row per method x model x data size, the failure and why
        cells = page.locator("#progress-table td.cell")
        assert cells.count() == len(
            {(s["method"], s["model"], s["data_size"]) for _, s in live.planned}
        )
        assert "out of memory" in page.inner_text("#failed")
        # the figure: one point per finished (method, model, data size), and the fitted curves
        page.wait_for_selector(".answer[data-best]", timeout=20_000)
        assert page.locator("svg.curves .point").count() == done
        assert page.locator("svg.curves .fit-curve").count() > 0
        answer = page.inner_text("#answer")
        assert "P(best)" in answer and "nats/token" in answer
        # a marker that a reload would wipe
        page.evaluate("window.__kept = 1")
        with RunStore(db) as store:
            # a runner takes the last run: the page says it runs, and where
            store.register_runner()
            [run] = store.claim(limit=1)
            page.wait_for_selector("#running", timeout=10_000)
            assert f"{socket.gethostname()}:{os.getpid()}" in page.inner_text("#running")
            assert page.locator("#progress-table td.run").count() == 1
            store.finish(run.run_key, "done", record=simulated_run(run.spec))
            t0 = time.monotonic()
            page.wait_for_function(
                f"document.getElementById('done-count').textContent === '{done + 1}'",
                timeout=10_000,
            )
            shown_after = time.monotonic() - t0
        assert page.evaluate("window.__kept") == 1, "the page reloaded"
        print(f"run finished -> on the page in {shown_after:.2f} s")
        page.wait_for_function(
            "document.querySelectorAll('svg.curves .point').length === " + str(done + 1),
            timeout=10_000,
        )
    finally:
        server.close()

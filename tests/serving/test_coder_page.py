"""The coder page at / of `policy-topics serve`, used in a real headless Chromium as a coder would: keyboard
and labels, a CSV of seed documents uploaded, what the page shows for them (topic, probability, status,
alternatives, highlighted words, the topic mix, uncertain first), the coded CSV downloaded, bad files
told apart on the page, and a pasted text. Screenshots are kept in the test's folder and test-artifacts/."""

from __future__ import annotations

import csv
import io
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO
from live_server import Served, call, serving

sys.path.insert(0, str(REPO / "tests" / "tracking"))
from chromium import headless_chromium, keep_screenshot

pytestmark = pytest.mark.e2e

SEEDS = ["03-rural-hospital-insulin-costs.txt", "19-pakistan-us-foreign-ministers.txt",
         "16-defense-budget-shipbuilding.txt"]


@pytest.fixture(scope="module")
def server(demo_store, tmp_path_factory) -> Iterator[Served]:
    with serving(demo_store.home, tmp_path_factory.mktemp("page"), "--model", demo_store.registered) as live:
        yield live


@pytest.fixture
def downloads(tmp_path) -> Path:
    folder = tmp_path / "downloads"
    folder.mkdir()
    return folder


@pytest.fixture
def browser(tmp_path, downloads) -> Iterator:
    driver = headless_chromium(tmp_path / "chromium-profile", {"download.default_directory": str(downloads),
                                                               "download.prompt_for_download": False})
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    try:
        yield driver
    finally:
        driver.quit()


def seed_csv(folder: Path) -> Path:
    path = folder / "seeds.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["doc", "text"])
        for name in SEEDS:
            writer.writerow([name, (REPO / "seeds" / name).read_text(encoding="utf-8")])
    return path


def wait_for(driver, condition, timeout: float = 60):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.2,
                         ignored_exceptions=(StaleElementReferenceException,)).until(condition)


def cards(driver) -> list:
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, "#results > li.doc")


def test_a_coder_uploads_seed_documents_and_sees_topics_words_and_mix_uncertain_first(server, browser, tmp_path,
                                                                                    downloads):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.get(server.url + "/")
    model = wait_for(browser, lambda d: d.find_element(By.ID, "model").text.startswith("Model models:/")
                     and d.find_element(By.ID, "model"))
    meta = call(server.url + "/metadata").json
    assert "models:/topics-demo/1 (version 1" in model.text
    assert f"Threshold {meta['threshold']:.2f}: coded = probability" in model.text
    for control in browser.find_elements(By.CSS_SELECTOR, "input, textarea, select"):  # every control labelled
        assert browser.find_elements(By.CSS_SELECTOR, f"label[for='{control.get_attribute('id')}']")

    path = seed_csv(tmp_path)
    browser.find_element(By.ID, "file").send_keys(str(path))
    browser.find_element(By.ID, "paragraphs").send_keys(Keys.SPACE)  # keyboard, not a click
    assert browser.find_element(By.ID, "paragraphs").is_selected()
    browser.find_element(By.ID, "code").send_keys(Keys.ENTER)
    wait_for(browser, lambda d: len(cards(d)) == len(SEEDS))

    truth = {d["id"]: d for d in call(f"{server.url}/code?name=seeds.csv&explain=50&segment=paragraphs",
                                      path.read_bytes()).json["documents"]}
    shown = cards(browser)
    statuses = [card.get_attribute("data-status") for card in shown]
    assert statuses == sorted(statuses, key=["uncertain", "coded", "empty"].index)  # uncertain documents first
    for card in shown:
        document = next(d for d in truth.values() if d["id"] in card.text)
        assert f"probability {100 * document['probability']:.1f}%" in card.text
        assert document["status"].upper() in card.text.upper()
        best = document["top_topics"][0]
        assert f"Alternatives: {best['topic']} {100 * best['probability']:.1f}%" in card.text
        marks = [m.text.lower() for m in card.find_elements(By.CSS_SELECTOR, ".text mark.push")]
        words = [e["ngram"] for e in document["explanation"] if e["kind"] == "word" and e["share"] > 0]
        assert marks and words[0] in " ".join(marks)  # the strongest word is highlighted
        assert "Topic mix of the paragraphs" in card.text

    health = next(c for c in shown if "seeds.csv:2" in c.text)  # the insulin-costs seed, a Health bill
    assert health.find_element(By.TAG_NAME, "h3").text == "Health (3)" and "CODED" in health.text.upper()
    pakistan = next(c for c in shown if "seeds.csv:3" in c.text)
    mix = truth["seeds.csv:3"]["topic_mix"]
    assert pakistan.find_element(By.CSS_SELECTOR, ".mix").text.endswith(" · ".join(
        f"{m['topic']} {100 * m['share']:.0f}% (coded {100 * m['coded_share']:.0f}%)" for m in mix))
    assert len({m["topic"] for m in mix}) > 1  # the article covers more than one topic
    browser.execute_script("document.getElementById('results-title').scrollIntoView()")
    keep_screenshot(browser, tmp_path, "coder-page-seeds.png")

    browser.find_element(By.ID, "download").send_keys(Keys.ENTER)
    saved = downloads / "seeds-coded.csv"
    deadline = time.monotonic() + 30
    while not saved.is_file():
        assert time.monotonic() < deadline, f"no download: {list(downloads.iterdir())}"
        time.sleep(0.2)
    time.sleep(0.3)
    rows = list(csv.DictReader(io.StringIO(saved.read_text(encoding="utf-8"))))
    assert [r["doc"] for r in rows] == SEEDS
    assert [r["status"] for r in rows] == [truth[f"seeds.csv:{n}"]["status"] for n in (2, 3, 4)]
    assert json.loads(rows[1]["topic_mix"]) == truth["seeds.csv:3"]["topic_mix"]


@pytest.mark.parametrize(("name", "data", "phrase"), [
    ("corpus.xlsx", b"PK\x03\x04\x14\x00\x06\x00 not a csv", "corpus.xlsx is not a CSV or text file"),
    ("corpus.csv", b"title,party\nA bill,D\n", "column 'text' (the text column) not found in corpus.csv"),
    ("corpus.csv", b"text\nna\xefve caf\xe9\n", "corpus.csv is not valid utf-8"),
    ("empty.txt", b"", "empty.txt is empty: nothing to code"),
])
def test_a_bad_file_gets_a_clear_message_on_the_page_and_no_download(server, browser, tmp_path, name, data, phrase):
    from selenium.webdriver.common.by import By

    path = tmp_path / name
    path.write_bytes(data)
    browser.get(server.url + "/")
    wait_for(browser, lambda d: d.find_element(By.ID, "model").text.startswith("Model "))
    browser.find_element(By.ID, "file").send_keys(str(path))
    browser.find_element(By.ID, "code").click()
    message = wait_for(browser, lambda d: d.find_element(By.ID, "message").text and d.find_element(By.ID, "message"))
    assert phrase in message.text and "Traceback" not in browser.page_source
    assert message.get_attribute("class") == "error" and message.get_attribute("role") == "alert"
    assert not cards(browser) and not browser.find_element(By.ID, "download").is_enabled()
    if name == "corpus.xlsx":
        keep_screenshot(browser, tmp_path, "coder-page-bad-file.png")


def test_a_file_over_the_limit_is_refused_on_the_page_before_it_is_sent(demo_store, browser, tmp_path):
    from selenium.webdriver.common.by import By

    path = tmp_path / "speech.txt"
    path.write_text("A very long speech on farm subsidies. " * 200)
    with serving(demo_store.home, tmp_path, "--model", demo_store.registered, "--max-bytes", "2000") as small:
        browser.get(small.url + "/")
        wait_for(browser, lambda d: d.find_element(By.ID, "model").text.startswith("Model "))
        browser.find_element(By.ID, "file").send_keys(str(path))
        browser.find_element(By.ID, "code").click()
        message = wait_for(browser, lambda d: d.find_element(By.ID, "message").text)
    assert "speech.txt is 7,600 bytes, over this server's limit of 2,000 bytes" in message
    assert "policy-topics predict --input FILE" in message and not cards(browser)


def test_a_pasted_text_is_coded_with_its_words_highlighted(server, browser, tmp_path):
    from selenium.webdriver.common.by import By

    browser.get(server.url + "/")
    wait_for(browser, lambda d: d.find_element(By.ID, "model").text.startswith("Model "))
    browser.find_element(By.ID, "code").click()
    assert "Nothing to code" in wait_for(browser, lambda d: d.find_element(By.ID, "message").text)
    text = "Emergency drought payments for wheat farmers whose crops failed"
    browser.find_element(By.ID, "text").send_keys(text)
    browser.find_element(By.ID, "code").click()
    [card] = wait_for(browser, lambda d: cards(d) or False)
    expected = call(server.url + "/predict", json.dumps({"texts": [text]}).encode()).json["predictions"][0]
    assert card.find_element(By.TAG_NAME, "h3").text == f"{expected['topic']} ({expected['code']})"
    assert "pasted.txt" in card.text and card.find_elements(By.CSS_SELECTOR, "mark.push")
    keep_screenshot(browser, tmp_path, "coder-page-pasted.png")


def test_behind_an_access_token_the_page_works_with_the_browsers_login(demo_store, browser, tmp_path):
    """The token as the password of the browser's login: what the browser then sends with every request
    (set here through the DevTools protocol, as a headless browser shows no prompt) opens the page, its
    script and its requests to the server."""
    import base64

    from selenium.webdriver.common.by import By

    with serving(demo_store.home, tmp_path, "--model", demo_store.registered,
                 POLICY_TOPICS_SERVE_TOKENS="page-token-7") as secured:
        assert call(secured.url + "/").status == 401
        login = base64.b64encode(b"coder:page-token-7").decode()
        browser.execute_cdp_cmd("Network.enable", {})
        browser.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Basic {login}"}})
        browser.get(secured.url + "/")
        wait_for(browser, lambda d: d.find_element(By.ID, "model").text.startswith("Model models:/"))
        browser.find_element(By.ID, "text").send_keys("Emergency drought payments for wheat farmers")
        browser.find_element(By.ID, "code").click()
        [card] = wait_for(browser, lambda d: cards(d) or False)
    assert "pasted.txt" in card.text and not browser.find_element(By.ID, "message").text

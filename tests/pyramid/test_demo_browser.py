"""The demo's login and consent pages in a real headless Chromium (DESIGN.md D26: Debian's
``chromium`` and ``chromium-driver`` with Selenium; nothing downloads a browser).

One smoke test per page: log in, consent, land on the redirect with a code; deny gives
``access_denied`` (RFC 6749 §4.1.2.1). The branches are tested with WebTest in
test_demo_pages.py. Skipped when ``/usr/bin/chromium`` is absent, unless ``CI`` is set: then
it fails, so CI cannot silently lose it.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import waitress

from pyramid_attesto.demo import demo_settings, make_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

pytestmark = pytest.mark.slow


def _require_browser() -> None:
    if CHROMIUM.exists() and CHROMEDRIVER.exists():
        return
    message = "Debian's chromium and chromium-driver are not installed"
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI is set: apt-get install -y chromium chromium-driver)")
    pytest.skip(message)


class _Late:
    app: Any = None

    def __call__(self, environ: Any, start_response: Any) -> Any:
        return self.app(environ, start_response)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    _require_browser()
    late = _Late()
    server = waitress.create_server(late, host="127.0.0.1", port=0, threads=2)
    origin = f"http://127.0.0.1:{server.effective_port}"  # type: ignore[union-attr]
    late.app = make_app(demo_settings(origin, tmp_path_factory.mktemp("demo") / "var"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield origin
    server.close()
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def driver(demo: str) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(argument)
    browser = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    browser.set_page_load_timeout(20)
    try:
        yield browser
    finally:
        browser.quit()


def _wait_for(driver: Any, title: str) -> None:
    """Wait until the page titled ``title`` has loaded (a click returns before navigation)."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 15).until(
        lambda d: (
            d.title.startswith(title)
            and d.execute_script("return document.readyState") == "complete"
        )
    )


def _sign_in(driver: Any, demo: str, user: str, password: str) -> None:
    from selenium.webdriver.common.by import By

    driver.delete_all_cookies()
    driver.get(f"{demo}/start")
    _wait_for(driver, "Sign in")
    driver.find_element(By.ID, "username").send_keys(user)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    _wait_for(driver, "Consent")


def _decide(driver: Any, decision: str) -> dict[str, list[str]]:
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, f"button[value={decision}]").click()
    _wait_for(driver, "Callback")
    return parse_qs(urlsplit(driver.current_url).query)


def test_login_consent_and_code_in_chromium(demo: str, driver: Any) -> None:
    from selenium.webdriver.common.by import By

    _sign_in(driver, demo, "alice", "wonderland")
    assert "Demo Web App" in driver.page_source
    query = _decide(driver, "allow")
    assert driver.current_url.startswith(f"{demo}/callback?")
    assert query["iss"] == [demo]
    assert query["code"][0] == driver.find_element(By.ID, "code").text


def test_deny_gives_access_denied_in_chromium_rfc6749_4_1_2_1(demo: str, driver: Any) -> None:
    _sign_in(driver, demo, "bob", "builder")
    query = _decide(driver, "deny")
    assert query["error"] == ["access_denied"]
    assert "code" not in query


def test_missing_chromium_skips_locally_and_fails_under_ci(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(sys.modules[__name__], "CHROMIUM", tmp_path / "no-chromium")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        _require_browser()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception):
        _require_browser()

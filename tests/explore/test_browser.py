"""The page in a real browser: Debian's chromium and chromedriver driven by Selenium (nothing
downloaded). Draw a 7 with mouse drags, read the prediction, see the first layer's maps, click
an output value and read its arithmetic."""

import os
import shutil
import time

import pytest

from striate.explore.commands import make_explorer

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def _browser():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (pip install 'striate[test]')")
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.skip("no browser: install Debian's chromium and chromium-driver "
                    "(apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1500,1100"):
        options.add_argument(argument)
    options.binary_location = CHROMIUM
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def _wait(driver, condition, timeout=60):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition)


def test_draw_a_seven_and_read_the_arithmetic(lenet_checkpoint, serve):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    client = serve(make_explorer(str(lenet_checkpoint)))
    driver = _browser()
    try:
        driver.get(client.url + "/")
        _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#prediction .bar"))
        explorer = client.server.explorer  # the inputs it has seen grow as we draw
        before = len(explorer._inputs)
        canvas = driver.find_element(By.ID, "draw")
        # a 7: the top bar left to right, then the diagonal down to the left
        ActionChains(driver).move_to_element_with_offset(canvas, -80, -90).click_and_hold() \
            .move_by_offset(80, 0).move_by_offset(80, 0) \
            .move_by_offset(-30, 60).move_by_offset(-30, 60).move_by_offset(-30, 60) \
            .release().perform()
        time.sleep(0.5)
        _wait(driver, lambda d: len(explorer._inputs) > before
              and not d.find_element(By.ID, "status").text)
        bars = driver.find_elements(By.CSS_SELECTOR, "#prediction .bar .name")
        names = [bar.text for bar in bars]
        assert names and names[0] in [str(i) for i in range(10)]  # the panel names a class
        # the first layer's feature maps are drawn: canvases of 28x28 pixels, not blank
        maps = driver.find_elements(By.CSS_SELECTOR, '#layers .layer[data-key="c1"] canvas')
        assert len(maps) == 6
        assert driver.execute_script(
            "const c = arguments[0]; const d = c.getContext('2d').getImageData(0, 0, c.width,"
            " c.height).data; let s = new Set(); for (let i = 0; i < d.length; i += 4)"
            " s.add(d[i]); return s.size;", maps[0]) > 2
        assert (maps[0].get_property("width"), maps[0].get_property("height")) == (28, 28)
        maps[0].click()
        _wait(driver, lambda d: d.find_element(By.ID, "detail").is_displayed())
        big = driver.find_element(By.ID, "big-map")
        # click the value at row 14, column 14 of the 28x28 map
        size = big.size
        ActionChains(driver).move_to_element_with_offset(
            big, int(size["width"] * (14.5 / 28 - 0.5)), int(size["height"] * (14.5 / 28 - 0.5))
        ).click().perform()
        _wait(driver, lambda d: "layer output" in d.find_element(By.ID, "arith-sum").text)
        title = driver.find_element(By.ID, "arith-title").text
        assert title.startswith("c1 (Conv2D) · output [14, 14, 0]")
        text = driver.find_element(By.ID, "arith-sum").text
        assert "Σ of 25 products" in text and "+ bias" in text and "✓ equal" in text
        kernel = driver.find_elements(By.CSS_SELECTOR, "#arith-kernel div")
        assert len(kernel) == 25
        # the step-through moves the window one output position on
        driver.find_element(By.ID, "step-next").click()
        _wait(driver, lambda d: "[14, 15, 0]" in d.find_element(By.ID, "arith-title").text)
        assert "✓ equal" in driver.find_element(By.ID, "arith-sum").text
        # the sandbox evaluates the output-size formula
        field = driver.find_element(By.ID, "sb-size")
        field.clear()
        field.send_keys("9")
        _wait(driver, lambda d: "= ⌊(9 + 1 + 1" in d.find_element(By.ID, "sb-formula").text)
        assert driver.find_element(By.ID, "sb-formula").text.rstrip().split("\n")[1] \
            .endswith("= 5")
    finally:
        driver.quit()

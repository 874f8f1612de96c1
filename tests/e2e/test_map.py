"""The map renders offline in Chromium: the deck.gl canvas shows the coloured points and rings."""

from __future__ import annotations

import io
import time
import re

import pytest
from PIL import Image

from core.platform.db import dispose_engines
from core.platform.vocab import Role
from tests.e2e.conftest import ARTIFACTS, wait_for_app
from tests.e2e.test_login_flow import _login
from tests.ui.test_map_page import _seed

pytestmark = pytest.mark.e2e


def test_map_screenshot_offline_is_not_blank(server, page):
    _seed(server["db"])
    dispose_engines()
    page.goto(server["url"])
    wait_for_app(page)
    _login(page, Role.coordinator)
    page.get_by_role("heading", name="Übersicht").wait_for()
    page.goto(server["url"] + "/karte")
    wait_for_app(page)
    page.get_by_label("Patient:in suchen (Name, Kennung wie P152 oder PLZ)").fill("Kartenprobe")
    page.keyboard.press("Enter")
    wait_for_app(page)
    canvas = page.locator("[data-testid='stDeckGlJsonChart'] canvas").first
    canvas.wait_for(state="visible", timeout=30_000)
    ARTIFACTS.mkdir(exist_ok=True)
    # deck.gl draws on the next animation frames: wait until the canvas shows the layers
    def drawn(img) -> bool:
        pixels = {img.getpixel((x, y)) for x in range(0, img.width, 2) for y in range(0, img.height, 2)}
        green = any(abs(r - 34) < 30 and abs(g - 139) < 30 and abs(b - 34) < 30 for r, g, b in pixels)
        red = any(r > 170 and g < 70 and b < 70 for r, g, b in pixels)
        return green and red  # the contactable green and the red max-distance ring

    deadline = time.monotonic() + 30
    while True:
        png = canvas.screenshot(path=str(ARTIFACTS / "map_patient.png"))
        img = Image.open(io.BytesIO(png)).convert("RGB")
        if drawn(img) or time.monotonic() > deadline:
            break
    page.screenshot(path=str(ARTIFACTS / "map_page.png"), full_page=True)
    colours = img.getcolors(maxcolors=1_000_000) or []
    assert len(colours) > 5, "map canvas is blank"
    assert drawn(img), "the contactable therapist (green) and the distance ring (red) are not drawn"


def test_map_card_creates_inquiry(server, page):
    """The therapist card (linked by URL) offers the inquiry for the chosen patient; one click
    creates it and links to it in Vermittlung."""
    from tests.ui.test_map_page import _therapist_id

    _seed(server["db"])
    frei = _therapist_id(server["db"], "Frei")
    dispose_engines()
    page.goto(server["url"])
    wait_for_app(page)
    _login(page, Role.coordinator)
    page.get_by_role("heading", name="Übersicht").wait_for()
    page.goto(server["url"] + f"/karte?map_therapist={frei}")
    wait_for_app(page)
    button = page.get_by_role("button", name="Anfrage mit Paula Kartenprobe erstellen")
    button.wait_for()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "map_card.png"), full_page=True)
    button.click()
    page.get_by_test_id("stToastText").filter(has_text="erstellt (noch nicht gesendet)").wait_for(timeout=30_000)
    # the card shows the new state: this therapist now has an open inquiry
    page.get_by_text("Nicht anfragbar für Paula Kartenprobe").wait_for()
    link = page.get_by_role("link", name=re.compile(r"Anfrage A\d+ in der Vermittlung öffnen"))
    link.wait_for()
    page.screenshot(path=str(ARTIFACTS / "map_card_created.png"), full_page=True)
    link.click()
    page.get_by_role("heading", name="Vermittlung").wait_for(timeout=30_000)
    assert "mt_inquiry=" in page.url

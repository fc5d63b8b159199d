"""Figures and widgets of the outer shell: properties of what they draw, not pixels."""

import pytest
import torch

from rcl import plots


def test_the_nlf_explorer_redraws_its_png_when_a_slider_moves_and_captures_no_output():
    """Two sliders and an image of PNG bytes, redrawn when a slider moves. No ``Output`` widget: one that captured
    a figure as the cell ran hung papermill in about half its runs (rcl.plots.nlf_explorer)."""
    widgets = pytest.importorskip("ipywidgets")

    explorer = plots.nlf_explorer(torch.rand(3, 32, 32), seed=0)
    shot, read, image = explorer.children
    assert isinstance(shot, widgets.FloatSlider) and isinstance(read, widgets.FloatSlider)
    assert isinstance(image, widgets.Image) and bytes(image.value).startswith(b"\x89PNG")
    assert not any(isinstance(w, widgets.Output) for w in explorer.children)
    before = bytes(image.value)
    shot.value = shot.max
    assert bytes(image.value).startswith(b"\x89PNG") and bytes(image.value) != before
    assert shot.description == "λ_shot" and read.description == "λ_read"


def test_the_book_style_shows_a_tables_text_whole():
    import pandas as pd

    with pd.option_context("display.max_colwidth", 50):
        plots.set_style()
        long = "copy-the-input: f(x) vs x end to end (every task's test cases) ≥ 38"
        assert long in pd.DataFrame({"check": [long]}).to_html()

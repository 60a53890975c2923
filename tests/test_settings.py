from pathlib import Path

import pytest

from backbone.errors import SettingsError
from backbone.settings import SETTINGS, Settings, render_settings_toml


def test_written_file_round_trips_to_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "backbone.toml"
    path.write_text(render_settings_toml(), encoding="utf-8")
    assert Settings.load(path).values == Settings.defaults().values


def test_written_file_explains_every_setting() -> None:
    text = render_settings_toml()
    for setting in SETTINGS:
        assert f"# {setting.help}" in text
        assert f"{setting.key} = " in text


def test_override_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "backbone.toml"
    path.write_text(
        render_settings_toml({"warehouse.name": 'Say "hi"'}), encoding="utf-8"
    )
    assert Settings.load(path)["warehouse.name"] == 'Say "hi"'


def test_missing_keys_take_defaults(tmp_path: Path) -> None:
    path = tmp_path / "backbone.toml"
    path.write_text("[engine]\nthreads = 2\n", encoding="utf-8")
    settings = Settings.load(path)
    assert settings["engine.threads"] == 2
    assert settings["governance.min_cell_size"] == 10


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[engine]\nthreds = 2\n", "unknown setting 'engine.threds'"),
        ("[engine]\nthreads = 'two'\n", "'engine.threads' must be a whole number"),
        ("[warehouse]\nname = 3\n", "'warehouse.name' must be text"),
        ("[calendar]\nschool_year_start_month = 13\n", "month from 1 to 12"),
        ("[governance]\nmin_cell_size = -1\n", "cannot be negative"),
        ("name = 'x'\n", "'name' must be a [section]"),
        ("[engine\n", "is not valid TOML"),
    ],
)
def test_bad_settings_name_the_file_and_the_setting(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "backbone.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SettingsError) as caught:
        Settings.load(path)
    assert str(path) in str(caught.value)
    assert message in str(caught.value)

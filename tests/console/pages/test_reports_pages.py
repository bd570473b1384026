"""The report page: Jalali range for Persian readers, ISO for English ones, figures and
bars, and the CSV download."""

from __future__ import annotations

import csv
import io
import re

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from console.dates import format_date, local_date
from kartabl.models import utcnow
from tests.console.pages.conftest import World, sign_in

Db = sessionmaker[Session]


def test_english_report_shows_iso_range_figures_and_bars(client: TestClient,
                                                         world: World) -> None:
    sign_in(client, "maryam")
    today = local_date(utcnow()).isoformat()
    page = client.get("/reports", params={"start": today, "end": today}).text
    assert f'id="report-start" value="{today}"' in page and 'type="date"' in page
    assert re.search(r'id="total-opened"><span>Opened</span><b>3</b>', page)
    assert re.search(r'id="total-backlog"><span>Open now</span><b>3</b>', page)
    # One conversation per channel for email, SMS and Telegram: bars of equal, full length.
    for channel in ("email", "sms", "telegram"):
        assert re.search(rf'data-key="{channel}" data-count="1">.*?<rect x="0" y="1" '
                         r'width="240"', page, re.S)
    assert re.search(r'data-key="bale" data-count="0">.*?width="0"', page, re.S)
    assert f'href="/reports.csv?start={today}&amp;end={today}"' in page


def test_persian_report_reads_and_shows_jalali_dates(client: TestClient, world: World) -> None:
    sign_in(client, "ali")
    today = local_date(utcnow())
    jalali = format_date(today, "fa")  # ۱۴۰۵/۰۹/۱۰
    page = client.get("/reports", params={"start": jalali, "end": jalali}).text
    assert 'dir="rtl"' in page and f'id="report-start" data-value="{jalali}"' in page
    assert f'data-start="{today.isoformat()}"' in page
    # The agent's report covers their own and their team's conversation only, in Persian digits.
    assert re.search(r'id="total-opened"><span>بازشده</span><b>۱</b>', page)
    assert "تنها گفتگوهای شما و تیم‌هایتان" in page
    # Right to left: the bar grows from the right end of its box.
    assert re.search(r'data-key="sms" data-count="1">.*?<rect x="0" y="1" width="240"', page,
                     re.S)
    assert re.search(r'data-key="email" data-count="0">.*?<rect x="240" y="1" width="0"', page,
                     re.S)
    bad = client.get("/reports", params={"start": "1405/13/01"})
    assert bad.status_code == 400 and "چنین تاریخی وجود ندارد: <bdi>1405/13/01</bdi>" in bad.text


def test_csv_export_is_a_download(client: TestClient, world: World) -> None:
    sign_in(client, "maryam")
    today = local_date(utcnow()).isoformat()
    r = client.get("/reports.csv", params={"start": today, "end": today})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"] == (
        f'attachment; filename="kartabl-report-{today}-{today}.csv"')
    lines = r.text.lstrip("\ufeff").splitlines()
    assert lines[0] == "section,key,label,value,jalali"
    assert "totals,opened,,3," in lines and "channel,telegram,telegram,1," in lines


def test_persian_readers_csv_has_iso_dates_and_ascii_digits(client: TestClient,
                                                             world: World) -> None:
    # Given a Persian reader who typed the range as Jalali dates
    sign_in(client, "reza")
    today = local_date(utcnow())
    shown = format_date(today, "fa")
    r = client.get("/reports.csv", params={"start": shown, "end": shown})
    assert r.status_code == 200
    # Then the file has ISO dates and ASCII digits only, the Jalali date in its own column
    assert re.search("[۰-۹٠-٩]", r.text) is None
    rows = list(csv.reader(io.StringIO(r.text.lstrip("\ufeff"))))
    ascii_jalali = shown.translate(str.maketrans("۰۱۲۳۴۵۶۷۸۹", "0123456789"))
    assert ["period", "start", "", today.isoformat(), ascii_jalali] in rows
    assert ["totals", "opened", "", "3", ""] in rows


def test_persian_date_picker_chooses_a_jalali_range(client: TestClient, world: World) -> None:
    # Given a Persian reader: the range is picked as a Jalali day, month name and year
    sign_in(client, "ali")
    page = client.get("/reports").text
    assert 'id="report-start-month"' in page and '<option value="9"' in page
    assert ">آذر</option>" in page and 'type="date"' not in page
    # When the three lists are sent (1 Azar to 10 Azar 1405)
    page = client.get("/reports", params={"start_y": "1405", "start_m": "9", "start_d": "1",
                                          "end_y": "1405", "end_m": "9", "end_d": "10"}).text
    # Then the report covers 2026-11-22 to 2026-12-01, and the lists show that range
    assert 'data-start="2026-11-22" data-end="2026-12-01"' in page
    assert re.search(r'id="report-end-day".*?<option value="10" selected>۱۰</option>', page, re.S)
    assert re.search(r'id="report-end-year".*?<option value="1405" selected>۱۴۰۵</option>', page,
                     re.S)
    # A day the month does not have is refused in Persian (Mehr has 30 days)
    bad = client.get("/reports", params={"start_y": "1405", "start_m": "7", "start_d": "31",
                                         "end_y": "1405", "end_m": "9", "end_d": "10"})
    assert bad.status_code == 400 and "چنین تاریخی وجود ندارد" in bad.text


def test_english_reader_gets_the_browsers_date_picker(client: TestClient, world: World) -> None:
    sign_in(client, "maryam")
    page = client.get("/reports").text
    assert re.search(r'<input type="date" name="start" id="report-start" value="\d{4}-\d\d-\d\d">',
                     page)

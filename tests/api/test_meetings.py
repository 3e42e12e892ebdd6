"""The meeting directory: create, attendance, warnings, search filters, paging, merge patch."""

from __future__ import annotations

import pytest

from service.models import Meeting
from tests.api.conftest import assert_problem, count
from tests.factories import make_meeting

NEW = {"name": "Noon Serenity", "day": 1, "time": "12:00", "timezone": "America/Chicago"}


def test_create_with_defaults(api):
    response = api.post("/meetings", NEW)
    assert response.status_code == 201
    body = response.get_json()
    assert response.headers["Location"].endswith(f"/api/v1/meetings/{body['id']}")
    assert body["end_time"] == "13:00"
    assert body["fellowship"] == "other"
    assert body["types"] == []
    assert (body["attendance"], body["active"], body["source"]) == ("in_person", True, "manual")
    assert body["warnings"] == []


@pytest.mark.parametrize(
    ("extra", "attendance"),
    [
        ({"address": "1 Main St"}, "in_person"),
        ({"conference_url": "https://zoom.example/j/1"}, "online"),
        ({"conference_phone": "+1 555 0100"}, "online"),
        ({"address": "1 Main St", "conference_url": "https://zoom.example/j/1"}, "hybrid"),
        (
            {"address": "1 Main St", "types": ["TC"], "conference_url": "https://z.example"},
            "online",
        ),
        ({"address": "1 Main St", "types": ["TC"]}, "inactive"),
    ],
)
def test_attendance_is_derived(api, extra, attendance):
    assert api.post("/meetings", {**NEW, **extra}).get_json()["attendance"] == attendance


def test_end_time_wraps_and_dst_warning(api):
    body = api.post("/meetings", {**NEW, "time": "23:30"}).get_json()
    assert body["end_time"] == "00:30"
    body = api.post("/meetings", {**NEW, "time": "02:00"}).get_json()
    assert len(body["warnings"]) == 1 and "daylight" in body["warnings"][0]
    body = api.post("/meetings", {**NEW, "time": "02:00", "timezone": "America/Phoenix"}).get_json()
    assert body["warnings"] == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", ""),
        ("name", "n" * 256),
        ("day", 7),
        ("day", "1"),
        ("time", "12:60"),
        ("time", "noon"),
        ("end_time", "7pm"),
        ("timezone", "CST"),
        ("fellowship", "cult"),
        ("conference_url", "javascript:alert(1)"),
        ("types", "O"),
        ("types", ["x" * 21]),
        ("notes", "n" * 5001),
        ("attendance", "online"),
        ("active", False),
    ],
)
def test_invalid_fields_are_named(api, field, value):
    response = api.post("/meetings", {**NEW, field: value})
    assert_problem(response, 422)
    assert any(k.split(".")[0] == field for k in response.get_json()["errors"])
    assert count(Meeting) == 0


def test_merge_patch_keeps_length_and_replans(api, world, replans):
    meeting = world.meeting  # 19:00–20:00
    api.patch(f"/meetings/{meeting.id}", {"end_time": "20:30"})
    body = api.patch(f"/meetings/{meeting.id}", {"time": "18:00", "notes": "Back room"}).get_json()
    assert (body["time"], body["end_time"], body["notes"]) == ("18:00", "19:30", "Back room")
    assert ("meeting_plan", world.plan.id) in replans.sources
    body = api.patch(f"/meetings/{meeting.id}", {"notes": None, "location": None}).get_json()
    assert (body["notes"], body["location"]) == (None, None)
    assert_problem(api.patch(f"/meetings/{meeting.id}", {"timezone": None}), 422, "timezone")
    assert_problem(api.patch(f"/meetings/{meeting.id}", {"active": False}), 422, "active")


@pytest.fixture
def directory(people):
    p = people.riverside.id
    return {
        "big_book": make_meeting(p),  # Thu 19:00 aa in_person O,B
        "noon": make_meeting(p, name="Noon 100% Sober", day=1, time="12:00", fellowship="na",
                             types=["O", "ONL"], attendance="online", address=None, location=None,
                             conference_url="https://z.example"),
        "early": make_meeting(p, name="Early Bird", day=1, time="06:30", types=["C"], location="Library",
                              notes="Coffee_and_donuts"),
        "gone": make_meeting(p, name="Closed group", day=2, time="19:00", active=False),
        "other_practice": make_meeting(people.harbor.id, name="Harbor Big Book"),
    }  # fmt: skip


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["big_book", "noon", "early", "gone"]),
        ("day=1", ["noon", "early"]),
        ("after=12:00", ["big_book", "noon", "gone"]),
        ("before=12:00", ["early"]),
        ("after=07:00&before=19:00", ["noon"]),
        ("type=O", ["big_book", "noon", "gone"]),
        ("type=ON", []),
        ("attendance=online", ["noon"]),
        ("fellowship=na", ["noon"]),
        ("active=false", ["gone"]),
        ("active=true&day=4", ["big_book"]),
        ("q=big%20book", ["big_book"]),
        ("q=100%25", ["noon"]),
        ("q=coffee_and", ["early"]),
        ("q=%25", ["noon"]),
        ("q=st.%20mark", ["big_book", "gone"]),
    ],
)
def test_search_filters(api, directory, query, expected):
    items = api.get(f"/meetings?{query}").get_json()["items"]
    # Ids are time-ordered to the millisecond only, so compare with the ids sorted.
    assert [m["id"] for m in items] == sorted(directory[k].id for k in expected)


@pytest.mark.parametrize(
    "query", ["day=7", "day=monday", "after=25:00", "before=7pm", "attendance=remote",
              "fellowship=x", "active=maybe", "type=" + "t" * 21, "limit=0"],
)  # fmt: skip
def test_bad_filters_name_the_parameter(api, query):
    assert_problem(api.get(f"/meetings?{query}"), 422, query.split("=")[0])


def test_paging_carries_the_time_filter(api, directory):
    expected = sorted(directory[k].id for k in ("big_book", "noon", "gone"))
    first = api.get("/meetings?after=12:00&limit=2").get_json()
    assert [m["id"] for m in first["items"]] == expected[:2]
    assert first["next"].startswith("at1200_")
    second = api.get(f"/meetings?after={first['next']}&limit=2").get_json()
    assert [m["id"] for m in second["items"]] == expected[2:]
    assert second["next"] is None
    plain = api.get("/meetings?limit=3").get_json()
    rest = api.get(f"/meetings?limit=3&after={plain['next']}").get_json()
    assert len(plain["items"]) + len(rest["items"]) == 4


def test_other_practice_meeting_is_404(api, directory):
    assert_problem(api.get(f"/meetings/{directory['other_practice'].id}"), 404)
    assert_problem(api.patch(f"/meetings/{directory['other_practice'].id}", {"notes": "x"}), 404)

"""Write a realistic N-meeting Meeting Guide (TSML) JSON feed for import benchmarks.

    python -m bench.make_tsml_feed --meetings 10000 --out /tmp/feed.json [--seed 7]

Each meeting is one record (no day arrays), so an import of the file creates exactly N
meetings. Days, times, types, zones, regions and attendance vary the way an intergroup's
WordPress feed does: about a fifth online-only, a tenth hybrid, some HTML in the notes.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

ZONES = (
    ("America/New_York", 0.35), ("America/Chicago", 0.25), ("America/Denver", 0.1),
    ("America/Los_Angeles", 0.2), ("America/Phoenix", 0.03), ("Pacific/Honolulu", 0.02),
    ("Europe/London", 0.03), ("Australia/Sydney", 0.02),
)  # fmt: skip
TYPES = ("O", "C", "D", "SP", "ST", "B", "BE", "TR", "11", "12X12", "MED", "LIT", "W", "M",
         "Y", "LGBTQ", "X", "ASL", "S", "CAN", "BRK", "A", "DB")  # fmt: skip
NAMES = ("Big Book", "Step Study", "Serenity", "Daily Reflections", "Early Birds", "Happy Hour",
         "Keep It Simple", "Came to Believe", "Living Sober", "Lunch Bunch", "Primary Purpose",
         "Grapevine", "Women's Circle", "Men's Stag", "Young People", "Newcomers",
         "Candlelight", "Tradition Study", "Sunrise", "Night Owls")  # fmt: skip
STREETS = ("Main St", "Oak Ave", "Church St", "Elm St", "Park Rd", "2nd Ave", "Maple Dr")
CITIES = ("Springfield", "Riverside", "Franklin", "Greenville", "Fairview", "Madison")
REGIONS = ("Downtown", "North", "South", "East Side", "West End", "Uptown", "Lakeside")


def meeting(n: int, rng: random.Random) -> dict[str, Any]:
    """Return one TSML meeting object numbered n."""
    day = rng.randrange(7)
    start = rng.choice((6, 7, 7, 8, 9, 10, 12, 12, 17, 18, 18, 19, 19, 19, 20, 20, 21, 22))
    minute = rng.choice((0, 0, 0, 15, 30, 30, 45))
    length = rng.choice((60, 60, 60, 90))
    begins = datetime(2024, 1, 1, start, minute)
    ends = begins + timedelta(minutes=length)
    name = f"{rng.choice(NAMES)} {n}"
    kind = rng.random()
    online, hybrid = kind < 0.2, 0.2 <= kind < 0.3
    types = sorted(set(rng.sample(TYPES, rng.randint(1, 5))) | ({"ONL"} if online else set()))
    city = rng.choice(CITIES)
    row: dict[str, Any] = {
        "id": 1000 + n,
        "name": name,
        "slug": f"{name.lower().replace(' ', '-').replace(chr(39), '')}-{n}",
        "day": day,
        "time": begins.strftime("%H:%M"),
        "end_time": ends.strftime("%H:%M"),
        "timezone": rng.choices([z for z, _ in ZONES], [w for _, w in ZONES])[0],
        "types": types,
        "notes": rng.choice(
            (
                "",
                "Use the side door.",
                "<p>Coffee &amp; cookies.</p>",
                "Business meeting last Sunday of the month.",
            )
        ),  # fmt: skip
        "updated": (datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=n * 7)).strftime(
            "%Y-%m-%d %H:%M:%S"
        ),
        "region": rng.choice(REGIONS),
        "group": f"Group {n % 900}",
        "entity": "Example Intergroup",
        "url": f"https://intergroup.example.org/meetings/{n}/",
    }
    if online:
        row["location"] = "Online"
        row["approximate"] = "yes"
    else:
        row["location"] = f"{rng.choice(('St. Mark', 'Grace', 'Trinity', 'Unity'))} Church"
        row["formatted_address"] = f"{rng.randint(1, 999)} {rng.choice(STREETS)}, {city}, USA"
        row["latitude"] = round(rng.uniform(25, 48), 5)
        row["longitude"] = round(rng.uniform(-122, -70), 5)
        row["location_notes"] = rng.choice(("", "Parking in back", "Basement"))
    if online or hybrid:
        row["conference_url"] = f"https://zoom.us/j/{rng.randrange(10**9, 10**10)}"
        row["conference_url_notes"] = f"Passcode {rng.randrange(1000, 9999)}"
        if rng.random() < 0.5:
            row["conference_phone"] = f"+1 646 555 {rng.randrange(1000, 9999)}"
    return row


def make_feed(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """Return a deterministic feed of `count` meetings."""
    rng = random.Random(seed)
    return [meeting(n, rng) for n in range(1, count + 1)]


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and write the feed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meetings", type=int, required=True, help="How many meetings.")
    parser.add_argument("--out", type=Path, required=True, help="The JSON file to write.")
    parser.add_argument("--seed", type=int, default=7, help="Random seed (same seed, same file).")
    args = parser.parse_args(argv)
    if args.meetings < 0:
        parser.error("--meetings must be >= 0")
    args.out.write_text(json.dumps(make_feed(args.meetings, args.seed), indent=1))
    print(f"wrote {args.meetings} meetings to {args.out}")  # noqa: T201 - a script's output


if __name__ == "__main__":
    main()

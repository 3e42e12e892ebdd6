// Expand every VEVENT of an .ics file with Mozilla's ical.js, using the feed's own VTIMEZONEs.
//
// Usage: node expand.mjs FEED.ics WINDOW_START WINDOW_END
//   WINDOW_START / WINDOW_END are UTC ISO instants (e.g. 2026-09-01T00:00:00Z); the window is
//   half-open [start, end) and compared against each occurrence's start.
// Prints {"<uid>": ["2026-09-03T23:00:00Z", ...], ...}: timed occurrences as UTC instants,
// all-day occurrences as plain dates (YYYY-MM-DD), each list sorted.
import { readFileSync } from "node:fs";

import ICAL from "ical.js";

const MAX_OCCURRENCES = 100_000;

function fail(message) {
  process.stderr.write(`expand.mjs: ${message}\n`);
  process.exit(2);
}

const [path, startArg, endArg] = process.argv.slice(2);
if (!path || !startArg || !endArg) {
  fail("usage: node expand.mjs FEED.ics WINDOW_START WINDOW_END");
}
const windowStart = Date.parse(startArg);
const windowEnd = Date.parse(endArg);
if (Number.isNaN(windowStart) || Number.isNaN(windowEnd)) {
  fail(`bad window ${startArg} .. ${endArg}`);
}

const vcalendar = new ICAL.Component(ICAL.parse(readFileSync(path, "utf8")));

// Register the feed's VTIMEZONEs before any date property is decoded: ical.js resolves a TZID
// when it first reads the value, and an unknown TZID silently becomes floating time. Using the
// embedded definitions (not a bundled zone database) is what makes this harness worth having.
for (const vtimezone of vcalendar.getAllSubcomponents("vtimezone")) {
  ICAL.TimezoneService.register(vtimezone);
}

// All-day occurrences are placed in the window by their date at UTC midnight.
function startsAt(time) {
  return time.isDate ? Date.parse(`${time.toString()}T00:00:00Z`) : time.toUnixTime() * 1000;
}

function render(time) {
  if (time.isDate) {
    return time.toString(); // YYYY-MM-DD
  }
  return new Date(time.toUnixTime() * 1000).toISOString().replace(".000Z", "Z");
}

const result = {};
for (const vevent of vcalendar.getAllSubcomponents("vevent")) {
  const event = new ICAL.Event(vevent);
  const tzid = vevent.getFirstProperty("dtstart").getParameter("tzid");
  if (tzid && event.startDate.zone.tzid !== tzid) {
    fail(`${event.uid}: TZID ${tzid} was not resolved to the feed's VTIMEZONE`);
  }
  const instants = [];
  const iterator = event.iterator();
  for (let count = 0; ; count++) {
    if (count >= MAX_OCCURRENCES) {
      fail(`${event.uid}: more than ${MAX_OCCURRENCES} occurrences`);
    }
    const next = iterator.next();
    if (!next) {
      break;
    }
    const at = startsAt(next);
    if (at >= windowEnd) {
      break;
    }
    if (at >= windowStart) {
      instants.push(render(next));
    }
  }
  if (event.uid in result) {
    fail(`duplicate UID ${event.uid}`);
  }
  result[event.uid] = instants.sort();
}

process.stdout.write(JSON.stringify(result, null, 1) + "\n");

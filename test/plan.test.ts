/**
 * Table-driven tests of the pure plan(desired, observed, now): every rule of
 * CONTRACT.md § 4 on plain data, no database, no HTTP.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { ApiFixture } from "../controller/football-api.js";
import {
  type ApiAnswer,
  type ApiCall,
  chooseMode,
  type Desired,
  type FixtureRow,
  type FixtureState,
  mapStatus,
  type Override,
  plan,
  pointsFor,
  STATUS_MAP,
} from "../controller/plan.js";

const NOW = new Date("2025-03-15T15:00:00Z");
const at = (minutesFromNow: number) => new Date(NOW.getTime() + minutesFromNow * 60_000);

function row(overrides: Partial<FixtureRow> = {}): FixtureRow {
  return {
    fixtureId: 1,
    date: at(60),
    status: "NOT_STARTED",
    round: "Regular Season - 28",
    season: "2024",
    homeTeam: "Arsenal",
    awayTeam: "Chelsea",
    homeLogo: "https://media.example/arsenal.png",
    awayLogo: "https://media.example/chelsea.png",
    homeScore: null,
    awayScore: null,
    league: "Premier League",
    leagueId: 39,
    venue: "Emirates Stadium",
    venueCity: "London",
    matchTimestamp: at(60),
    ...overrides,
  };
}

function api(overrides: Partial<ApiFixture> = {}): ApiFixture {
  const date = overrides.date ?? at(60);
  return {
    fixtureId: 1,
    date,
    timestamp: Math.floor(date.getTime() / 1000),
    statusShort: "NS",
    statusLong: "Not Started",
    elapsed: null,
    leagueId: 39,
    leagueName: "Premier League",
    season: 2024,
    round: "Regular Season - 28",
    homeTeam: "Arsenal",
    awayTeam: "Chelsea",
    homeLogo: "https://media.example/arsenal.png",
    awayLogo: "https://media.example/chelsea.png",
    homeGoals: null,
    awayGoals: null,
    venueName: "Emirates Stadium",
    venueCity: "London",
    ...overrides,
  };
}

/** The DB row that the API fixture `a` would produce. */
function rowOf(a: ApiFixture, status: FixtureRow["status"]): FixtureRow {
  return row({
    fixtureId: a.fixtureId,
    date: a.date,
    status,
    homeScore: a.homeGoals,
    awayScore: a.awayGoals,
    matchTimestamp: a.timestamp === null ? null : new Date(a.timestamp * 1000),
  });
}

function desired(
  states: (FixtureState | FixtureRow)[],
  extra: Partial<Desired> = {},
  overrides: Override[] = [],
): Desired {
  const fixtures = new Map<number, FixtureState>();
  for (const s of states) {
    const state = "row" in s ? s : { row: s, submitted: 0, locked: 0 };
    fixtures.set(state.row.fixtureId, state);
  }
  return {
    competitions: [{ leagueId: 39, season: 2024, lastFullSyncAt: at(-60), resyncRequested: false }],
    fixtures,
    overrides: new Map(overrides.map((o) => [o.fixtureId, o])),
    apiDue: true,
    fullSyncIntervalMs: 86_400_000,
    points: { exact: 3, outcome: 1 },
    ...extra,
  };
}

const answer = (call: ApiCall, fixtures: ApiFixture[]): ApiAnswer => ({ call, fixtures });
const seasonCall: ApiCall = { kind: "season", leagueId: 39, season: 2024 };

describe("status mapping", () => {
  const table: [string, string | undefined][] = [
    ["TBD", "NOT_STARTED"],
    ["NS", "NOT_STARTED"],
    ["1H", "FIRST_HALF"],
    ["HT", "HALFTIME"],
    ["2H", "SECOND_HALF"],
    ["ET", "EXTRA_TIME"],
    ["BT", "BREAK_TIME"],
    ["P", "PENALTY"],
    ["FT", "FINISHED"],
    ["AET", "FINISHED_AET"],
    ["PEN", "FINISHED_PEN"],
    ["SUSP", "SUSPENDED"],
    ["INT", "INTERRUPTED"],
    ["PST", "POSTPONED"],
    ["CANC", "CANCELLED"],
    ["ABD", "ABANDONED"],
    ["AWD", "TECHNICAL_LOSS"],
    ["WO", "WALKOVER"],
    ["LIVE", "LIVE"],
    ["XYZ", undefined],
    ["", undefined],
    ["ns", undefined],
    ["constructor", undefined],
    ["__proto__", undefined],
  ];
  for (const [code, expected] of table) {
    test(`${JSON.stringify(code)} → ${expected ?? "unknown"}`, () => assert.equal(mapStatus(code), expected));
  }
  test("the map has exactly the contract's 19 codes", () => assert.equal(Object.keys(STATUS_MAP).length, 19));
});

describe("points", () => {
  const table: [string, [number, number], [number, number], number][] = [
    ["exact home win", [2, 1], [2, 1], 3],
    ["exact draw", [1, 1], [1, 1], 3],
    ["exact nil-nil", [0, 0], [0, 0], 3],
    ["outcome home win", [3, 0], [2, 1], 1],
    ["outcome draw", [0, 0], [2, 2], 1],
    ["outcome away win", [0, 1], [1, 4], 1],
    ["wrong: draw predicted, home won", [1, 1], [2, 1], 0],
    ["wrong: home predicted, away won", [2, 0], [0, 1], 0],
  ];
  for (const [name, p, a, expected] of table) {
    test(name, () =>
      assert.equal(
        pointsFor({ home: p[0], away: p[1] }, { home: a[0], away: a[1] }, { exact: 3, outcome: 1 }),
        expected,
      ),
    );
  }
  test("configurable points", () =>
    assert.equal(pointsFor({ home: 2, away: 1 }, { home: 2, away: 1 }, { exact: 5, outcome: 2 }), 5));
});

describe("fixture writes from the API", () => {
  test("a new fixture is inserted with league, league_id, season as a string, teams, logos, venue, round", () => {
    const p = plan(desired([]), { answers: [answer(seasonCall, [api({ fixtureId: 7 })])] }, NOW);
    assert.equal(p.fixtureWrites.length, 1);
    const w = p.fixtureWrites[0]!;
    assert.equal(w.insert, true);
    assert.equal(w.values.season, "2024");
    assert.equal(w.values.league, "Premier League");
    assert.equal(w.values.leagueId, 39);
    assert.equal(w.values.homeLogo, "https://media.example/arsenal.png");
    assert.equal(w.values.venue, "Emirates Stadium");
    assert.equal(w.values.round, "Regular Season - 28");
    assert.equal(w.values.status, "NOT_STARTED");
  });

  test("an unchanged answer writes nothing", () => {
    const a = api();
    const p = plan(desired([rowOf(a, "NOT_STARTED")]), { answers: [answer(seasonCall, [a])] }, NOW);
    assert.deepEqual(p.fixtureWrites, []);
    assert.deepEqual(p.locks, []);
    assert.deepEqual(p.scores, []);
  });

  test("scores come from goals; a change records from and to", () => {
    const a = api({ statusShort: "2H", homeGoals: 1, awayGoals: 0, date: at(-60) });
    const before = rowOf(api({ date: at(-60) }), "FIRST_HALF");
    const p = plan(desired([before]), { answers: [answer({ kind: "live", leagueIds: [39] }, [a])] }, NOW);
    const w = p.fixtureWrites[0]!;
    assert.equal(w.values.homeScore, 1);
    assert.equal(w.values.awayScore, 0);
    assert.deepEqual(w.changes.status, ["FIRST_HALF", "SECOND_HALF"]);
    assert.deepEqual(w.changes.homeScore, [null, 1]);
  });

  test("an unknown status code leaves the whole row as it was and is reported", () => {
    const before = rowOf(api({ date: at(-30) }), "FIRST_HALF");
    const a = api({ statusShort: "XYZ", homeGoals: 5, awayGoals: 5, date: at(-30), homeTeam: "Renamed" });
    const p = plan(desired([before]), { answers: [answer({ kind: "live", leagueIds: [39] }, [a])] }, NOW);
    assert.deepEqual(p.fixtureWrites, []);
    assert.deepEqual(p.unknownStatuses, [{ fixtureId: 1, code: "XYZ" }]);
    assert.equal(p.apiStatuses[0]?.known, false);
  });

  test("an unknown status on a new fixture does not insert a guess", () => {
    const p = plan(
      desired([]),
      { answers: [answer(seasonCall, [api({ fixtureId: 9, statusShort: "ZZ" })])] },
      NOW,
    );
    assert.deepEqual(p.fixtureWrites, []);
    assert.equal(p.unknownStatuses.length, 1);
  });

  test("missing values in an answer never erase known ones", () => {
    const before = row({ status: "SECOND_HALF", homeScore: 2, awayScore: 1, date: at(-70) });
    const a = api({
      statusShort: "2H",
      date: at(-70),
      homeGoals: null,
      awayGoals: null,
      homeLogo: null,
      venueName: null,
      matchTimestamp: undefined,
    } as Partial<ApiFixture>);
    const p = plan(
      desired([{ ...before, matchTimestamp: new Date(Math.floor(at(-70).getTime() / 1000) * 1000) }]),
      {
        answers: [answer({ kind: "live", leagueIds: [39] }, [a])],
      },
      NOW,
    );
    assert.deepEqual(p.fixtureWrites, []);
  });

  test("a postponement before kick-off clears nothing and is written", () => {
    const a = api({ statusShort: "PST" });
    const p = plan(desired([rowOf(api(), "NOT_STARTED")]), { answers: [answer(seasonCall, [a])] }, NOW);
    assert.deepEqual(p.fixtureWrites[0]?.changes.status, ["NOT_STARTED", "POSTPONED"]);
  });

  test("the latest answer about a fixture wins", () => {
    const early = api({ statusShort: "1H", homeGoals: 0, awayGoals: 0, date: at(-20) });
    const late = api({ statusShort: "2H", homeGoals: 1, awayGoals: 0, date: at(-20) });
    const p = plan(
      desired([rowOf(api({ date: at(-20) }), "NOT_STARTED")]),
      { answers: [answer(seasonCall, [early]), answer({ kind: "ids", ids: [1] }, [late])] },
      NOW,
    );
    assert.equal(p.fixtureWrites[0]?.values.status, "SECOND_HALF");
  });
});

describe("locking", () => {
  const cases: {
    name: string;
    state: Partial<FixtureRow>;
    submitted: number;
    apiSays?: Partial<ApiFixture>;
    lock: boolean;
  }[] = [
    { name: "kick-off passed, API silent", state: { date: at(-1) }, submitted: 3, lock: true },
    { name: "kick-off exactly now", state: { date: at(0) }, submitted: 1, lock: true },
    { name: "kick-off in the future", state: { date: at(1) }, submitted: 3, lock: false },
    { name: "no submitted predictions", state: { date: at(-5) }, submitted: 0, lock: false },
    {
      name: "kick-off passed while the API still says NS",
      state: { date: at(-3) },
      submitted: 2,
      apiSays: { statusShort: "NS", date: at(-3) },
      lock: true,
    },
    {
      name: "API reports under way before the scheduled time",
      state: { date: at(10) },
      submitted: 2,
      apiSays: { statusShort: "1H", date: at(10), homeGoals: 0, awayGoals: 0 },
      lock: true,
    },
    {
      name: "postponed before kick-off",
      state: { date: at(-10), status: "POSTPONED" },
      submitted: 2,
      lock: false,
    },
    {
      name: "cancelled before kick-off",
      state: { date: at(-10), status: "CANCELLED" },
      submitted: 2,
      lock: false,
    },
    {
      name: "postponement reported at kick-off",
      state: { date: at(-1) },
      submitted: 2,
      apiSays: { statusShort: "PST", date: at(-1) },
      lock: false,
    },
    {
      name: "abandoned after kick-off",
      state: { date: at(-50), status: "ABANDONED" },
      submitted: 2,
      lock: true,
    },
    { name: "suspended", state: { date: at(-50), status: "SUSPENDED" }, submitted: 1, lock: true },
    {
      name: "fixture of a competition not configured",
      state: { date: at(-1), leagueId: 999, league: "Other" },
      submitted: 1,
      lock: true,
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const state: FixtureState = { row: row(c.state), submitted: c.submitted, locked: 0 };
      const observed = c.apiSays
        ? { answers: [answer({ kind: "ids", ids: [1] }, [api(c.apiSays)])] }
        : { answers: [] };
      const p = plan(desired([state], { apiDue: false }), observed, NOW);
      assert.deepEqual(p.locks, c.lock ? [1] : []);
    });
  }
});

describe("scoring", () => {
  const finished = (status: FixtureRow["status"], home: number | null, away: number | null) =>
    row({ status, homeScore: home, awayScore: away, date: at(-120) });

  const cases: { name: string; state: FixtureState; score: boolean }[] = [
    {
      name: "FINISHED with locked predictions",
      state: { row: finished("FINISHED", 2, 1), submitted: 0, locked: 4 },
      score: true,
    },
    {
      name: "FINISHED_AET",
      state: { row: finished("FINISHED_AET", 1, 1), submitted: 0, locked: 1 },
      score: true,
    },
    {
      name: "FINISHED_PEN",
      state: { row: finished("FINISHED_PEN", 0, 0), submitted: 0, locked: 1 },
      score: true,
    },
    {
      name: "finished, nothing locked",
      state: { row: finished("FINISHED", 2, 1), submitted: 0, locked: 0 },
      score: false,
    },
    {
      name: "finished without a score",
      state: { row: finished("FINISHED", null, null), submitted: 0, locked: 2 },
      score: false,
    },
    {
      name: "one score missing",
      state: { row: finished("FINISHED", 2, null), submitted: 0, locked: 2 },
      score: false,
    },
    {
      name: "postponed",
      state: { row: finished("POSTPONED", null, null), submitted: 0, locked: 2 },
      score: false,
    },
    { name: "cancelled", state: { row: finished("CANCELLED", 1, 0), submitted: 0, locked: 2 }, score: false },
    {
      name: "abandoned with a score",
      state: { row: finished("ABANDONED", 1, 0), submitted: 0, locked: 2 },
      score: false,
    },
    {
      name: "still playing",
      state: { row: finished("SECOND_HALF", 1, 0), submitted: 0, locked: 2 },
      score: false,
    },
    {
      name: "submitted predictions of a fixture already final are locked and scored in one plan",
      state: { row: finished("FINISHED", 3, 3), submitted: 2, locked: 0 },
      score: true,
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const p = plan(desired([c.state], { apiDue: false }), { answers: [] }, NOW);
      if (c.score) {
        assert.deepEqual(p.scores, [
          { fixtureId: 1, home: c.state.row.homeScore!, away: c.state.row.awayScore!, rescore: false },
        ]);
      } else {
        assert.deepEqual(p.scores, []);
      }
    });
  }

  test("final whistle in this answer: scored against the new score", () => {
    const state: FixtureState = {
      row: row({ status: "SECOND_HALF", homeScore: 1, awayScore: 0, date: at(-110) }),
      submitted: 0,
      locked: 3,
    };
    const a = api({ statusShort: "FT", homeGoals: 2, awayGoals: 0, date: at(-110) });
    const p = plan(desired([state]), { answers: [answer({ kind: "ids", ids: [1] }, [a])] }, NOW);
    assert.equal(p.scores.length, 1);
    assert.equal(p.scores[0]?.home, 2);
    assert.equal(p.scores[0]?.away, 0);
    assert.equal(p.scores[0]?.rescore, false, "a first final whistle is a scoring, not a re-scoring");
  });

  test("a correction after the final whistle re-scores processed predictions", () => {
    const state: FixtureState = {
      row: row({ status: "FINISHED", homeScore: 2, awayScore: 1, date: at(-300) }),
      submitted: 0,
      locked: 0,
    };
    const a = api({ statusShort: "FT", homeGoals: 2, awayGoals: 2, date: at(-300) });
    const p = plan(desired([state]), { answers: [answer(seasonCall, [a])] }, NOW);
    assert.deepEqual(p.scores, [{ fixtureId: 1, home: 2, away: 2, rescore: true }]);
    assert.deepEqual(p.fixtureWrites[0]?.changes.awayScore, [1, 2]);
  });

  test("an unchanged final fixture is not re-scored", () => {
    const state: FixtureState = {
      row: row({ status: "FINISHED", homeScore: 2, awayScore: 1, date: at(-300) }),
      submitted: 0,
      locked: 0,
    };
    const a = api({ statusShort: "FT", homeGoals: 2, awayGoals: 1, date: at(-300) });
    const p = plan(
      desired([{ ...state, row: rowOf(a, "FINISHED") }]),
      { answers: [answer(seasonCall, [a])] },
      NOW,
    );
    assert.deepEqual(p.scores, []);
    assert.deepEqual(p.fixtureWrites, []);
  });
});

describe("operator pins (overrides)", () => {
  test("a pin wins over the API and is scored from", () => {
    const state: FixtureState = {
      row: row({ status: "SECOND_HALF", homeScore: 0, awayScore: 0, date: at(-100) }),
      submitted: 0,
      locked: 2,
    };
    const a = api({ statusShort: "2H", homeGoals: 0, awayGoals: 0, date: at(-100) });
    const pin: Override = { fixtureId: 1, status: "FINISHED", homeScore: 1, awayScore: 0 };
    const p = plan(
      desired([state], {}, [pin]),
      { answers: [answer({ kind: "live", leagueIds: [39] }, [a])] },
      NOW,
    );
    assert.equal(p.fixtureWrites[0]?.values.status, "FINISHED");
    assert.equal(p.fixtureWrites[0]?.reason, "override");
    assert.deepEqual(p.scores, [{ fixtureId: 1, home: 1, away: 0, rescore: false }]);
  });

  test("a pin applies without any API answer, and once applied writes nothing more", () => {
    const pin: Override = { fixtureId: 1, status: "CANCELLED", homeScore: null, awayScore: null };
    const first = plan(desired([row()], { apiDue: false }, [pin]), { answers: [] }, NOW);
    assert.equal(first.fixtureWrites[0]?.values.status, "CANCELLED");
    const second = plan(
      desired([row({ status: "CANCELLED" })], { apiDue: false }, [pin]),
      { answers: [] },
      NOW,
    );
    assert.deepEqual(second.fixtureWrites, []);
  });
});

describe("API calls", () => {
  test("start: one season call per competition, nothing else", () => {
    const d = desired([row({ status: "FIRST_HALF", date: at(-10) })], {
      competitions: [
        { leagueId: 39, season: 2024, lastFullSyncAt: null, resyncRequested: false },
        { leagueId: 140, season: 2024, lastFullSyncAt: null, resyncRequested: false },
        { leagueId: 78, season: 2024, lastFullSyncAt: null, resyncRequested: false },
      ],
    });
    const p = plan(d, { answers: [] }, NOW);
    assert.deepEqual(
      p.fetches.map((f) => f.kind),
      ["season", "season", "season"],
    );
  });

  test("a season sync is due once a day, and when an operator asks", () => {
    const stale = desired([], {
      competitions: [{ leagueId: 39, season: 2024, lastFullSyncAt: at(-24 * 60), resyncRequested: false }],
    });
    assert.deepEqual(plan(stale, { answers: [] }, NOW).fetches, [seasonCall]);
    const fresh = desired([], {
      competitions: [{ leagueId: 39, season: 2024, lastFullSyncAt: at(-60), resyncRequested: false }],
    });
    assert.deepEqual(plan(fresh, { answers: [] }, NOW).fetches, []);
    const asked = desired([], {
      competitions: [{ leagueId: 39, season: 2024, lastFullSyncAt: at(-1), resyncRequested: true }],
    });
    assert.deepEqual(plan(asked, { answers: [] }, NOW).fetches, [seasonCall]);
  });

  test("live fixtures: one live call for every competition, ids only after it", () => {
    const d = desired(
      [
        row({ fixtureId: 1, status: "FIRST_HALF", date: at(-10) }),
        row({ fixtureId: 2, status: "SECOND_HALF", date: at(-60) }),
      ],
      {
        competitions: [
          { leagueId: 39, season: 2024, lastFullSyncAt: at(-60), resyncRequested: false },
          { leagueId: 140, season: 2024, lastFullSyncAt: at(-60), resyncRequested: false },
        ],
      },
    );
    const first = plan(d, { answers: [] }, NOW);
    assert.deepEqual(first.fetches, [{ kind: "live", leagueIds: [39, 140] }]);
    // The live answer lists fixture 1 only: fixture 2 (finished, suspended…) is asked by id.
    const liveAnswer = answer({ kind: "live", leagueIds: [39, 140] }, [
      api({ fixtureId: 1, statusShort: "1H", date: at(-10), homeGoals: 0, awayGoals: 0 }),
    ]);
    const second = plan(d, { answers: [liveAnswer] }, NOW);
    assert.deepEqual(second.fetches, [{ kind: "ids", ids: [2] }]);
    const idsAnswer = answer({ kind: "ids", ids: [2] }, [
      api({ fixtureId: 2, statusShort: "FT", date: at(-60), homeGoals: 1, awayGoals: 1 }),
    ]);
    const third = plan(d, { answers: [liveAnswer, idsAnswer] }, NOW);
    assert.deepEqual(third.fetches, []);
  });

  test("a fixture lagging after kick-off is asked by id, in batches of 20", () => {
    const rows = Array.from({ length: 45 }, (_, i) => row({ fixtureId: 100 + i, date: at(-5) }));
    const p = plan(desired(rows), { answers: [] }, NOW);
    const ids = p.fetches.filter((f): f is Extract<ApiCall, { kind: "ids" }> => f.kind === "ids");
    assert.deepEqual(
      ids.map((c) => c.ids.length),
      [20, 20, 5],
    );
    assert.equal(new Set(ids.flatMap((c) => c.ids)).size, 45);
  });

  test("with matches live, a lagging fixture waits for the live answer before it is asked by id", () => {
    const d = desired([
      row({ fixtureId: 1, status: "FIRST_HALF", date: at(-30) }),
      row({ fixtureId: 2, date: at(-2) }),
      row({ fixtureId: 3, date: at(-2) }),
    ]);
    assert.deepEqual(plan(d, { answers: [] }, NOW).fetches, [{ kind: "live", leagueIds: [39] }]);
    // The live answer lists 1 and 2 (under way now); only 3 is asked by id.
    const live = answer({ kind: "live", leagueIds: [39] }, [
      api({ fixtureId: 1, statusShort: "1H", date: at(-30), homeGoals: 0, awayGoals: 0 }),
      api({ fixtureId: 2, statusShort: "1H", date: at(-2), homeGoals: 0, awayGoals: 0 }),
    ]);
    assert.deepEqual(plan(d, { answers: [live] }, NOW).fetches, [{ kind: "ids", ids: [3] }]);
  });

  test("while another match is live, a fixture kicking off within two hours is checked at most every 5 minutes", () => {
    const live = row({ fixtureId: 1, status: "SECOND_HALF", date: at(-70) });
    const soon = row({ fixtureId: 2, date: at(60) });
    const liveAnswer = answer({ kind: "live", leagueIds: [39] }, [
      api({ fixtureId: 1, statusShort: "2H", date: at(-70), homeGoals: 1, awayGoals: 0 }),
    ]);
    const cases: [string, Date | undefined, ApiCall[]][] = [
      ["never answered", undefined, [{ kind: "ids", ids: [2] }]],
      ["answered 2 minutes ago", at(-2), []],
      ["answered 6 minutes ago", at(-6), [{ kind: "ids", ids: [2] }]],
    ];
    for (const [name, lastAnswered, expected] of cases) {
      const d = desired([live, soon], {
        lastAnsweredAt: lastAnswered ? new Map([[2, lastAnswered]]) : new Map(),
      });
      assert.deepEqual(plan(d, { answers: [liveAnswer] }, NOW).fetches, expected, name);
    }
  });

  test("a fixture kicked off more than a day ago and still NOT_STARTED is left to the daily sync", () => {
    const p = plan(desired([row({ date: at(-25 * 60) })]), { answers: [] }, NOW);
    assert.deepEqual(p.fetches, []);
  });

  test("nothing is asked when the API is not due, except a due season sync", () => {
    const p = plan(
      desired([row({ status: "FIRST_HALF", date: at(-10) })], { apiDue: false }),
      { answers: [] },
      NOW,
    );
    assert.deepEqual(p.fetches, []);
  });

  test("fixtures of competitions not configured are never asked about", () => {
    const p = plan(
      desired([row({ status: "FIRST_HALF", date: at(-10), leagueId: 999 })]),
      { answers: [] },
      NOW,
    );
    assert.deepEqual(p.fetches, []);
  });

  test("a competition synced in this loop needs no live or ids call", () => {
    const d = desired([row({ status: "FIRST_HALF", date: at(-10) })], {
      competitions: [{ leagueId: 39, season: 2024, lastFullSyncAt: null, resyncRequested: false }],
    });
    const synced = answer(seasonCall, [
      api({ statusShort: "1H", date: at(-10), homeGoals: 0, awayGoals: 0 }),
    ]);
    assert.deepEqual(plan(d, { answers: [synced] }, NOW).fetches, []);
  });

  test("starting soon: fixtures within two hours are asked by id", () => {
    const p = plan(
      desired([row({ fixtureId: 5, date: at(90) }), row({ fixtureId: 6, date: at(300) })]),
      { answers: [] },
      NOW,
    );
    assert.deepEqual(p.fetches, [{ kind: "ids", ids: [5] }]);
  });
});

describe("schedule mode", () => {
  const cases: [string, Partial<FixtureRow>[], string][] = [
    ["a fixture under way", [{ status: "HALFTIME", date: at(-50) }], "live_matches"],
    ["kick-off passed, still NOT_STARTED", [{ date: at(-2) }], "live_matches"],
    ["kick-off within two hours", [{ date: at(119) }], "matches_starting_soon"],
    ["a fixture later today", [{ date: new Date("2025-03-15T21:00:00Z") }], "match_day"],
    ["a fixture within seven days", [{ date: at(3 * 24 * 60) }], "upcoming_matches"],
    ["nothing near", [{ date: at(30 * 24 * 60) }], "minimal"],
    ["only finished fixtures", [{ status: "FINISHED", date: at(-200) }], "minimal"],
    ["no fixtures", [], "minimal"],
    [
      "live wins over soon",
      [{ date: at(30) }, { status: "FIRST_HALF", date: at(-20), fixtureId: 2 }],
      "live_matches",
    ],
  ];
  for (const [name, rows, mode] of cases) {
    test(name, () =>
      assert.equal(
        chooseMode(
          rows.map((r) => row(r)),
          NOW,
        ),
        mode,
      ),
    );
  }
});

import { describe, expect, it, vi } from "vitest";

vi.mock("@tauri-apps/api/core", () => ({ invoke: vi.fn() }));
vi.mock("@tauri-apps/api/event", () => ({ listen: vi.fn() }));

import { errorText } from "../components/errorText";
import { clockWarning } from "../views/network";
import type { Status } from "../types";

describe("error sentences", () => {
  it("gives a sentence and a next step for each code, not the technical message", () => {
    expect(errorText({ code: "wrong_password", message: "secret error: wrong password" })).toMatch(/^That is not this instance's admin password\. Check Caps Lock/);
    expect(errorText({ code: "storage", message: "database error: (code: 5) database is locked" })).toMatch(/Check that the disk is not full/);
    expect(errorText({ code: "integrity", message: "3 records differ" })).toMatch(/Repair rebuilds them/);
    expect(errorText({ code: "catching_up", message: "…" })).toMatch(/Try again in a moment/);
  });

  it("puts raw network errors in words and keeps sentences meant for people", () => {
    expect(errorText({ code: "unreachable", kind: "network", message: "could not reach the inviter Alice's laptop at /ip4/127.0.0.1/tcp/45017: Failed to dial the requested peer" })).toBe(
      "Alice's laptop's computer cannot be reached right now. DAN must be open on it and online; try again in a few minutes, or ask them for a new invite link.",
    );
    expect(errorText({ code: "unreachable", kind: "network", message: "unexpected answer from the inviter: Reconcile([1, 2])" })).toMatch(/^The other computer cannot be reached right now/);
    expect(errorText({ code: "invalid", message: "the invite link expired; ask for a new one" })).toBe("the invite link expired; ask for a new one");
    expect(errorText(new Error("boom"))).toBe("boom");
  });

  it("warns in words when this computer's clock is far from the members'", () => {
    const at = (clock_skew_ms: number | null) => ({ clock_skew_ms }) as unknown as Status;
    expect(clockWarning(at(null))).toBeNull();
    expect(clockWarning(at(30_000))).toBeNull();
    expect(clockWarning(at(-10 * 60_000))).toMatch(/^This computer's clock is 10 minutes behind the other members' clocks\. Set the right time/);
    expect(clockWarning(at(60 * 60_000))).toMatch(/60 minutes ahead of/);
  });
});

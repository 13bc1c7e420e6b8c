import { describe, expect, it, vi } from "vitest";

vi.mock("@tauri-apps/api/core", () => ({ invoke: vi.fn() }));
vi.mock("@tauri-apps/api/event", () => ({ listen: vi.fn() }));

import type { Api } from "../api";
import type { MemberView, RecordView, Status } from "../types";
import { passwordStrength, validateFirstRun, FirstRunView } from "../views/firstRun";
import { RecordWindow, RecordsView, PAGE_SIZE, visibleRange, ROW_HEIGHT } from "../views/records";
import { buildPut } from "../views/recordEditor";
import { SetupChecklist, setupSteps } from "../components/setupChecklist";
import { MemberRow, explainEvidence } from "../views/members";
import { describeReachability, describeState, NetworkView, relayStateText } from "../views/network";

const status: Status = {
  peer_id: "12D3KooWme",
  name: "laptop",
  network_id: "n1",
  network_name: "Commons",
  state: "active",
  members: 3,
  min_members: 3,
  op_count: 10,
  ops_root: "o",
  state_root: "s",
  code_hash: "c1",
  charter_hash: "h",
  code_approved: true,
  build: { code_hash: "c1", label: null, description: "DAN 0.1.0 · desktop · Linux x86-64", approval: "approved", approval_ends_ms: null },
  online_peers: 2,
  missing_ops: 0,
  last_sync: 1,
  listen_addrs: [],
  join: null,
  deprecation: null,
  damaged_records: [],
  own_seq: 3,
  own_seq_on_peers: 3,
};

function record(n: number): RecordView {
  return { id: `r${n}`, collection: "books", title: `Book ${n}`, fields: {}, tags: [], deleted: false, created_at: 1, updated_at: 2, origin: "p", version: "v" };
}

function fakeClient(total: number): Api {
  const listRecords = vi.fn(async (q: { offset?: number; limit?: number }) => {
    const from = q.offset ?? 0;
    const to = Math.min(total, from + (q.limit ?? PAGE_SIZE));
    return { total, records: Array.from({ length: Math.max(0, to - from) }, (_, i) => record(from + i)) };
  });
  return { listRecords } as unknown as Api;
}

describe("first run", () => {
  it("rates passwords and checks the form", () => {
    expect(passwordStrength("short")).toBe("too short");
    expect(passwordStrength("aaaaaaaaaa")).toBe("weak");
    expect(passwordStrength("Correct-Horse-Battery-9")).toBe("strong");
    expect(validateFirstRun("", "long enough pw", "long enough pw")).toMatch(/name/);
    expect(validateFirstRun("laptop", "short", "short")).toMatch(/10 characters/);
    expect(validateFirstRun("laptop", "long enough pw", "other password")).toMatch(/not the same/);
    expect(validateFirstRun("laptop", "long enough pw", "long enough pw")).toBeNull();
  });

  it("shows the problem instead of creating the instance", () => {
    const createInstance = vi.fn();
    const view = FirstRunView(() => undefined, { createInstance } as unknown as Api);
    document.body.replaceChildren(view);
    (view.querySelector('[aria-label="Instance name"]') as HTMLInputElement).value = "laptop";
    (view.querySelector('[aria-label="Admin password"]') as HTMLInputElement).value = "long enough pw";
    (view.querySelector('[aria-label="Repeat the admin password"]') as HTMLInputElement).value = "different pw!";
    view.querySelector("form")!.dispatchEvent(new Event("submit", { cancelable: true }));
    expect(createInstance).not.toHaveBeenCalled();
    expect(view.querySelector('[role="alert"]')!.textContent).toMatch(/not the same/);
  });

  it("puts the cursor in the name field, but never moves it out of a field the person already chose", async () => {
    const frame = () => new Promise((resolve) => requestAnimationFrame(resolve));
    const fresh = FirstRunView(() => undefined, {} as Api);
    document.body.replaceChildren(fresh);
    await frame();
    expect(document.activeElement).toBe(fresh.querySelector('[aria-label="Instance name"]'));
    const quick = FirstRunView(() => undefined, {} as Api);
    document.body.replaceChildren(quick);
    const password = quick.querySelector('[aria-label="Admin password"]') as HTMLInputElement;
    password.focus();
    await frame();
    expect(document.activeElement).toBe(password);
  });

  it("says the password cannot be reset, and takes a weak one only when pressed again", async () => {
    const createInstance = vi.fn(async () => undefined);
    const view = FirstRunView(() => undefined, { createInstance } as unknown as Api);
    document.body.replaceChildren(view);
    expect(view.querySelector('[aria-label="Password warning"]')!.textContent).toMatch(/Nobody can reset the admin password/);
    expect(view.textContent).toMatch(/at least three people/);
    (view.querySelector('[aria-label="Instance name"]') as HTMLInputElement).value = "laptop";
    for (const box of ["Admin password", "Repeat the admin password"]) (view.querySelector(`[aria-label="${box}"]`) as HTMLInputElement).value = "aaaaaaaaaa";
    const submit = () => view.querySelector("form")!.dispatchEvent(new Event("submit", { cancelable: true }));
    submit();
    expect(createInstance).not.toHaveBeenCalled();
    expect(view.querySelector('[role="alert"]')!.textContent).toMatch(/weak/);
    submit();
    expect(createInstance).toHaveBeenCalledWith("laptop", "aaaaaaaaaa");
  });
});

describe("setup checklist", () => {
  it("shows what is done and what comes next until the network is active", () => {
    const forming = { ...status, state: "forming", members: 2, min_members: 3 } as Status;
    const steps = setupSteps(forming);
    expect(steps.map((s) => s.done)).toEqual([true, true, false, false, false]);
    expect(steps[2].text).toMatch(/2 other admins.*Members now: 2 of 3/);
    const card = SetupChecklist(forming);
    expect(card.getAttribute("aria-label")).toBe("Setup checklist");
    expect(card.querySelectorAll('li[aria-label="To do"]').length).toBe(3);
    expect(setupSteps({ ...forming, state: "active", members: 3 }).every((s) => s.done)).toBe(true);
  });
});

describe("records", () => {
  it("draws only the visible rows of a long list", () => {
    expect(visibleRange(0, 440, 100_000)).toEqual([0, 15]);
    const [from, to] = visibleRange(ROW_HEIGHT * 50_000, 440, 100_000);
    expect(from).toBe(49_995);
    expect(to - from).toBeLessThan(30);
  });

  it("fetches pages on demand across page boundaries", async () => {
    const client = fakeClient(100_000);
    const window = new RecordWindow(client, "", "updated_desc");
    await window.load();
    expect(window.total).toBe(100_000);
    const rows = await window.rows(PAGE_SIZE * 3 - 2, PAGE_SIZE * 3 + 3);
    expect(rows.map((r) => r.id)).toEqual(["r598", "r599", "r600", "r601", "r602"]);
    expect((client.listRecords as ReturnType<typeof vi.fn>).mock.calls.length).toBe(3);
  });

  it("moves the focus through the rows with the keyboard and keeps it across redraws", async () => {
    // Fails on e0617a0: every redraw re-created the rows and dropped the
    // focus, and there were no arrow keys.
    const view = RecordsView(status, new Map(), fakeClient(1000));
    document.body.replaceChildren(view);
    await new Promise((r) => setTimeout(r, 0));
    await new Promise((r) => setTimeout(r, 0));
    const row = (n: number) => view.querySelector<HTMLElement>(`[role="listitem"][data-index="${n}"]`);
    row(0)!.focus();
    row(0)!.dispatchEvent(new KeyboardEvent("keydown", { key: "ArrowDown", bubbles: true }));
    await new Promise((r) => setTimeout(r, 0));
    expect(document.activeElement).toBe(row(1));
    row(1)!.dispatchEvent(new KeyboardEvent("keydown", { key: "End", bubbles: true }));
    await new Promise((r) => setTimeout(r, 0));
    await new Promise((r) => setTimeout(r, 0));
    expect(document.activeElement?.getAttribute("data-index")).toBe("999");
    row(999)!.dispatchEvent(new KeyboardEvent("keydown", { key: "Home", bubbles: true }));
    await new Promise((r) => setTimeout(r, 0));
    await new Promise((r) => setTimeout(r, 0));
    expect(document.activeElement).toBe(row(0));
  });

  it("says what to do when a forming network has no records", async () => {
    const view = RecordsView({ ...status, state: "forming", members: 1 }, new Map(), fakeClient(0));
    document.body.replaceChildren(view);
    await new Promise((r) => setTimeout(r, 0));
    await new Promise((r) => setTimeout(r, 0));
    expect(view.querySelector('[aria-label="Setup checklist"]')!.textContent).toMatch(/Members now: 1 of 3/);
    expect((view.querySelector("button.primary") as HTMLButtonElement).disabled).toBe(true);
  });

  it("validates the record form", () => {
    expect(() => buildPut(null, "bad=name", "t", [], "")).toThrow(/collection/);
    expect(() => buildPut(null, "books", " ", [], "")).toThrow(/title/);
    expect(() => buildPut(null, "books", "t", [{ name: "pages", kind: "number", value: "12x" }], "")).toThrow(/whole number/);
    const put = buildPut(null, "books", "Dune", [{ name: "pages", kind: "number", value: "412" }, { name: "read", kind: "yes/no", value: "yes" }], "scifi, classic");
    expect(put).toEqual({ id: null, collection: "books", title: "Dune", fields: { pages: 412, read: true }, tags: ["scifi", "classic"] });
    const edit = buildPut({ ...record(1), fields: { old: "x" } }, "", "New title", [], "");
    expect(edit.fields).toEqual({ old: null });
    expect(edit.collection).toBeNull();
  });

  it("takes field names, collections and tags in any language, in one Unicode form", () => {
    // Fails on e0617a0: names were ASCII only ("Année de publication" was refused).
    const decomposed = "Anne\u0301e de publication";
    const put = buildPut(null, "Bibliothèque", "Dune", [{ name: decomposed, kind: "number", value: "1965" }], "克隆, science fiction");
    expect(put.collection).toBe("Bibliothèque");
    expect(put.fields).toEqual({ "Ann\u00e9e de publication": 1965 });
    expect(put.tags).toEqual(["克隆", "science fiction"]);
    // A field another member stored decomposed is edited as it is, not
    // doubled by a composed twin.
    const stored = { ...record(1), fields: { [decomposed]: 1965 } };
    const edit = buildPut(stored, "", stored.title, [{ name: decomposed, kind: "number", value: "1966" }], "");
    expect(edit.fields).toEqual({ [decomposed]: 1966 });
    const proto = buildPut(null, "books", "t", [{ name: "constructor", kind: "text", value: "x" }, { name: "__proto__", kind: "text", value: "y" }], "");
    expect(Object.keys(proto.fields).sort()).toEqual(["__proto__", "constructor"]);
    for (const bad of ["a=b", "a:b", "a,b", " lead", "two  spaces", "bidi\u202eflip", "Price\ufe0f", "\u3164", "x\u{1fffe}", "é".repeat(65)]) {
      expect(() => buildPut(null, "books", "t", [{ name: bad, kind: "text", value: "" }], ""), bad).toThrow(/field name/);
    }
  });
});

describe("members and network", () => {
  const member: MemberView = {
    peer_id: "p2",
    name: "carol",
    admin_name: "Carol",
    status: "pending",
    code_hash: "c1",
    online: true,
    last_seen: 1,
    approvals: 1,
    needed: 2,
    is_self: false,
    refused: null,
    state_root: null,
    roots: null,
    suspended: false,
    deprecation: null,
    build: { code_hash: "c1", label: { version: "0.1.0", platform: "linux-x86_64", kind: "desktop" }, description: "DAN 0.1.0 · desktop · Linux x86-64", approval: "approved", approval_ends_ms: null },
    join_code: "4829 1173 0552",
    requested_ms: 1,
    invited_by: "alice",
    succeeds: null,
    takes_over_seat: false,
    seat_taken_by: null,
    seat_contested: false,
    seat_removed: false,
    succeeded_by: null,
    second_seat_of: null,
  };

  it("says when a request takes over a deprecated seat, and warns when it waits, can never be admitted, competes with another, or may give an admin a second seat", () => {
    const names = new Map([["p1", "carol (old laptop)"]]);
    const readmission = MemberRow({ ...member, succeeds: "p1", takes_over_seat: true }, () => undefined, {} as Api, names);
    expect(readmission.querySelector('[aria-label="carol seat"]')!.textContent).toMatch(/takes over the seat of carol \(old laptop\).*no second seat/);
    expect(readmission.querySelector('[role="alert"]')).toBeNull();
    const notDeprecated = MemberRow({ ...member, succeeds: "p1" }, () => undefined, {} as Api, names);
    expect(notDeprecated.querySelector('[role="alert"]')!.textContent).toMatch(/not a deprecated member here: it stays waiting/);
    const taken = MemberRow({ ...member, succeeds: "p1", seat_taken_by: "p2" }, () => undefined, {} as Api, new Map([...names, ["p2", "carol (new laptop)"]]));
    expect(taken.querySelector('[role="alert"]')!.textContent).toMatch(/carol \(new laptop\) already holds it: this request can never be admitted/);
    const removed = MemberRow({ ...member, succeeds: "p1", seat_removed: true }, () => undefined, {} as Api, names);
    expect(removed.querySelector('[role="alert"]')!.textContent).toMatch(/removed by vote: approving gives it a seat of its own/);
    const contested = MemberRow({ ...member, succeeds: "p1", takes_over_seat: true, seat_contested: true }, () => undefined, {} as Api, names);
    expect(contested.querySelector('[role="alert"]')!.textContent).toMatch(/so does another request: only one can take it/);
    const second = MemberRow({ ...member, second_seat_of: "carol (old laptop)" }, () => undefined, {} as Api, names);
    expect(second.querySelector('[role="alert"]')!.textContent).toMatch(/second vote/);
    const old = MemberRow({ ...member, peer_id: "p1", status: "deprecated", succeeded_by: "p2" }, () => undefined, {} as Api, new Map([["p2", "carol"]]));
    expect(old.textContent).toMatch(/Came back as carol/);
    expect(MemberRow(member, () => undefined, {} as Api).querySelector('[aria-label="carol seat"]')).toBeNull();
  });

  it("shows pending instances with their approvals and vote buttons", () => {
    const row = MemberRow(member, () => undefined, {} as Api);
    expect(row.textContent).toMatch(/1 of 2 approvals/);
    expect(row.querySelector('[aria-label="Approve carol"]')).not.toBeNull();
    expect(row.querySelector('[aria-label="carol join code"]')!.textContent).toBe("4829 1173 0552");
  });

  it("approves only after the approver says the join codes match", async () => {
    const approve = vi.fn(async () => member);
    const row = MemberRow(member, () => undefined, { approve } as unknown as Api);
    document.body.replaceChildren(row);
    (row.querySelector('[aria-label="Approve carol"]') as HTMLButtonElement).click();
    const dialog = document.querySelector('dialog[aria-label="Compare the join code"]')!;
    expect(dialog.querySelector('[aria-label="Join code to compare"]')!.textContent).toBe("4829 1173 0552");
    expect(dialog.textContent).toMatch(/asked to join on .* with an invite from alice/);
    Array.from(dialog.querySelectorAll("button")).find((b) => b.textContent === "Not sure")!.click();
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(approve).not.toHaveBeenCalled();
    (row.querySelector('[aria-label="Approve carol"]') as HTMLButtonElement).click();
    (Array.from(document.querySelectorAll("dialog button")).find((b) => b.textContent === "Codes match — approve") as HTMLButtonElement).click();
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(approve).toHaveBeenCalledWith("p2");
    const deprecated = MemberRow({ ...member, status: "deprecated", deprecation: "signed two different ops with seq 4" }, () => undefined, {} as Api);
    expect(deprecated.querySelector('[aria-label="carol status"]')!.textContent).toBe("Deprecated");
    expect(deprecated.textContent).toMatch(/two different ops/);
  });

  it("explains evidence and network states in words", () => {
    const names = new Map([["p2", "carol"]]);
    const text = explainEvidence({ id: "e", accuser: "p1", offender: "p2", status: "proven", reason: "signed two different ops with seq 4", cutoff: 4, received_ms: 1 }, names);
    expect(text).toMatch(/^carol broke the network's rules/);
    expect(describeState({ ...status, state: "forming", members: 2 })).toMatch(/needs 1 more instance\b/);
    expect(describeState({ ...status, state: "deprecated", deprecation: "its state root is wrong" })).toMatch(/its state root is wrong/);
    const adopted = explainEvidence({ id: "e", accuser: "p1", offender: "p2", status: "adopted", reason: "it runs software the charter never approved", cutoff: 1, received_ms: 1 }, names);
    expect(adopted).toMatch(/majority of the members/);
    expect(describeState({ ...status, state: "pending", join: { network_id: "n", network_name: "Commons", inviter: "p", inviter_name: "alice", approvals: 1, needed: 2, peer_id: "p9", join_code: "0000 0000 0000" } })).toMatch(/1 of 2/);
  });

  it("offers a deprecated instance to ask for readmission, and no invites", () => {
    const deprecated = NetworkView({ ...status, state: "deprecated", deprecation: "it runs software the charter never approved" }, () => undefined, {} as Api);
    expect(deprecated.querySelector('[aria-label="Readmission"]')?.textContent).toMatch(/Ask to be readmitted/);
    expect(deprecated.querySelector('form[aria-label="Join network"]')).not.toBeNull();
    expect(deprecated.textContent).not.toMatch(/Create invite link/);
    const active = NetworkView(status, () => undefined, { invites: async () => [] } as unknown as Api);
    expect(active.querySelector('[aria-label="Readmission"]')).toBeNull();
  });
});

describe("replication state", () => {
  it("counts the members whose checkpoint holds this instance's ops", async () => {
    const { replication } = await import("../views/recordEditor");
    const base = { admin_name: "", code_hash: null, online: true, last_seen: 1, approvals: 0, needed: 0, is_self: false, refused: null, state_root: null, suspended: false, deprecation: null, build: null, join_code: "", requested_ms: null, invited_by: null, succeeds: null, takes_over_seat: false, seat_taken_by: null, seat_contested: false, seat_removed: false, succeeded_by: null, second_seat_of: null };
    const members = [
      { ...base, peer_id: "a", name: "a", status: "member", roots: "match", is_self: true },
      { ...base, peer_id: "b", name: "b", status: "member", roots: "match" },
      { ...base, peer_id: "c", name: "c", status: "member", roots: "syncing" },
      { ...base, peer_id: "d", name: "d", status: "deprecated", roots: "mismatch" },
    ] as const;
    expect(replication([...members])).toMatch(/confirmed on 2 of 3 members/);
    expect(replication(members.slice(0, 2) as never)).toMatch(/all 2 members/);
  });
});

describe("reachability", () => {
  it("says whether others can reach this instance, through which relay, and what to do if nobody can", () => {
    expect(describeReachability({ ...status, reachability: "public" })).toBe("Other instances can reach this one directly.");
    expect(describeReachability({ ...status, reachability: "private", relays: [] })).toMatch(/Nobody outside .* ask a member with a server to run `dan relay`/);
    const relayed = describeReachability({ ...status, reachability: "private", relays: [{ addr: "/ip4/203.0.113.7/tcp/4001/p2p/12D3KooWrelay", reserved: true }] });
    expect(relayed).toMatch(/Others reach it through the relay \/ip4\/203\.0\.113\.7\/tcp\/4001\/p2p\/12D3KooWrelay\./);
    expect(describeReachability({ ...status, reachability: "unknown" })).toMatch(/^Not known yet/);
  });

  it("shows it in the network view", () => {
    const view = NetworkView({ ...status, reachability: "private", relays: [] }, () => {}, {} as Api);
    expect(view.querySelector('[aria-label="Reachability"]')?.textContent).toMatch(/ask a member with a server/i);
  });
});

describe("relays", () => {
  it("saves the relay addresses, one per line, with the admin password", async () => {
    const saved: string[][] = [];
    const client = {
      invites: async () => [],
      setRelays: async (relays: string[]) => {
        saved.push(relays);
        return relays.map((addr) => ({ addr, reserved: false }));
      },
    } as unknown as Api;
    const view = NetworkView({ ...status, relays: [] }, () => {}, client);
    const box = view.querySelector('textarea') as HTMLTextAreaElement;
    box.value = " /ip4/203.0.113.7/tcp/4001/p2p/12D3KooWrelay \n\n";
    (view.querySelector('[aria-label="Save relays"]') as HTMLButtonElement).click();
    await vi.waitFor(() => expect(saved).toEqual([["/ip4/203.0.113.7/tcp/4001/p2p/12D3KooWrelay"]]));
    await vi.waitFor(() => expect(view.querySelector('[aria-label="Relay state"]')?.textContent).toMatch(/no slot yet/));
  });

  it("says where each relay stands", () => {
    expect(relayStateText([])).toBe("No relay is used.");
    expect(relayStateText([{ addr: "/ip4/1.2.3.4/tcp/4001/p2p/12D3KooWr", reserved: true }])).toMatch(/holds a slot for this instance/);
    const refused = relayStateText([{ addr: "/ip4/1.2.3.4/tcp/4001/p2p/12D3KooWm", reserved: false, error: "the relay refused a slot (it relays only for members of its network, or is full)" }]);
    expect(refused).toMatch(/no slot yet: the relay refused a slot/);
    expect(relayStateText([{ addr: "/ip4/1.2.3.4/tcp/4001/p2p/12D3KooWm", reserved: true, learnt: true }])).toMatch(/a member of the network at a public address\): holds a slot/);
  });
});

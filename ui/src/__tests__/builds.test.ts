import { describe, expect, it, vi } from "vitest";

vi.mock("@tauri-apps/api/core", () => ({ invoke: vi.fn() }));
vi.mock("@tauri-apps/api/event", () => ({ listen: vi.fn() }));

import type { BuildView, InvitePreview, ProposalView } from "../types";
import { BuildText, buildApproval } from "../components/buildText";
import { ProposalItem, describeProposal } from "../views/members";
import { InvitePreviewText, JoinNetworkForm } from "../views/startNetwork";
import type { Api } from "../api";

const desktop: BuildView = { code_hash: "a".repeat(64), label: { version: "0.1.0", platform: "linux-x86_64", kind: "desktop" }, description: "DAN 0.1.0 · desktop · Linux x86-64", approval: "approved", approval_ends_ms: null };
const headless: BuildView = { ...desktop, code_hash: "b".repeat(64), description: "DAN 0.1.0 · headless · Linux x86-64" };

describe("builds as versions", () => {
  it("shows a version and its approval, with the hash only in the details", () => {
    const text = BuildText(desktop, "alice version");
    expect(text.querySelector('[aria-label="alice version"]')!.textContent).toBe("DAN 0.1.0 · desktop · Linux x86-64 — ✓ approved");
    expect(text.getAttribute("title")).toBe(`code hash ${desktop.code_hash}`);
    expect(buildApproval({ ...desktop, approval: "not_approved" })).toBe("✗ not approved");
    expect(buildApproval({ ...desktop, approval: "withdrawing", approval_ends_ms: 1 })).toMatch(/^⚠ approval ends/);
    expect(buildApproval({ ...desktop, approval: "withdrawn" })).toMatch(/upgrade required/);
  });

  it("shows a member's own vote instead of the vote buttons: a member votes once", () => {
    const proposal: ProposalView = { id: "p", kind: "add_builds", summary: "", proposer: "ada", yes: 1, no: 0, needed: 2, status: "open", decided_at: null, withdraws_at: null, grace_ms: null, builds: [headless], withdraws: [] };
    const client = {} as Api;
    const voted = ProposalItem({ ...proposal, my_vote: true }, new Map(), () => undefined, client);
    expect(voted.textContent).toMatch(/you voted yes/);
    expect(voted.querySelectorAll("button")).toHaveLength(0);
    const waiting = ProposalItem({ ...proposal, my_vote: null }, new Map(), () => undefined, client);
    expect([...waiting.querySelectorAll("button")].map((b) => b.textContent)).toEqual(["Vote yes", "Vote no"]);
  });

  it("words upgrade proposals as sentences", () => {
    const proposal: ProposalView = { id: "p", kind: "add_builds", summary: "", proposer: "ada", yes: 1, no: 0, needed: 2, status: "open", decided_at: null, withdraws_at: null, grace_ms: null, builds: [headless], withdraws: [] };
    const names = new Map([["ada", "Ada laptop"]]);
    expect(describeProposal(proposal, names)).toBe("Ada laptop proposes approving DAN 0.1.0 · headless · Linux x86-64 (code hash bbbbbbbbbbbb) alongside the versions approved now. Nothing stops being accepted.");
    const upgrade = describeProposal({ ...proposal, kind: "upgrade", withdraws: [desktop], withdraws_at: Date.parse("2030-01-01T00:00:00Z") }, names);
    expect(upgrade).toMatch(/^Ada laptop proposes approving DAN 0.1.0 · headless · Linux x86-64 \(code hash b+\)\. DAN 0.1.0 · desktop · Linux x86-64 will no longer be accepted on /);
    expect(upgrade).toMatch(/must install a new version/);
    const open = describeProposal({ ...proposal, kind: "upgrade", withdraws: [desktop], grace_ms: 0 }, names);
    expect(open).toMatch(/will no longer be accepted as soon as the vote passes/);
    expect(describeProposal({ ...proposal, kind: "upgrade", withdraws: [desktop], grace_ms: 7 * 86400_000 }, names)).toMatch(/7 days after the vote passes/);
  });

  it("tells a joiner on an unapproved build before joining, with the request to send", () => {
    const preview: InvitePreview = { network_id: "n".repeat(64), network_name: "Elm Street Library", inviter: "p1", inviter_name: "Ada laptop", expires_ms: 1, your_build: { ...desktop, approval: "not_approved" }, approved_builds: [headless], approval_request: '{"product":"DAN"}', relation: "no_network", look_alike: null };
    const box = document.createElement("div");
    box.append(...InvitePreviewText(preview));
    expect(box.querySelector('[aria-label="Your version"]')!.textContent).toMatch(/has not approved your version of DAN \(DAN 0.1.0 · desktop · Linux x86-64\)\. It approves: DAN 0.1.0 · headless/);
    expect((box.querySelector('[aria-label="Approval request"]') as HTMLTextAreaElement).value).toBe('{"product":"DAN"}');
    const ok = document.createElement("div");
    ok.append(...InvitePreviewText({ ...preview, your_build: desktop, approval_request: null }));
    expect(ok.querySelector('[aria-label="Your version"]')!.textContent).toMatch(/is approved by this network ✓/);
    expect(ok.querySelector('[aria-label="Approval request"]')).toBeNull();
  });

  it("flags an invite to a look-alike of the network this instance is in", () => {
    // Fails on e0617a0: the preview said nothing when the name matched a
    // known network under another id.
    const preview: InvitePreview = { network_id: "e".repeat(64), network_name: "Elm Street Library", inviter: "p9", inviter_name: "Ada laptop", expires_ms: 1, your_build: desktop, approved_builds: [desktop], approval_request: null, relation: "other_network", look_alike: { network_id: "a".repeat(64), network_name: "Elm Street Library" } };
    const box = document.createElement("div");
    box.append(...InvitePreviewText(preview));
    const banner = box.querySelector('[aria-label="Look-alike network"]')!;
    expect(banner.getAttribute("role")).toBe("alert");
    expect(banner.textContent).toMatch(/This is not your network “Elm Street Library”/);
    // Whole ids: a prefix of a few characters can be ground to match.
    expect(banner.querySelector('[aria-label="Invite network id"]')!.textContent).toBe(`${"e".repeat(64)} (this invite)`);
    expect(banner.querySelector('[aria-label="Your network id"]')!.textContent).toBe(`${"a".repeat(64)} (yours)`);
    expect(box.querySelector('[aria-label="Network note"]')!.textContent).toMatch(/joining this one means leaving it/);
    const plain = document.createElement("div");
    plain.append(...InvitePreviewText({ ...preview, relation: "no_network", look_alike: null }));
    expect(plain.querySelector('[aria-label="Look-alike network"]')).toBeNull();
    expect(plain.textContent).toMatch(/id eeeeeeeeeeee…/);
  });

  it("marks the join form busy until the preview is that of the link in the box", async () => {
    vi.useFakeTimers();
    const preview = (name: string, approval: BuildView["approval"]): InvitePreview => ({ network_id: "n".repeat(64), network_name: name, inviter: "p1", inviter_name: "Ada laptop", expires_ms: 1, your_build: { ...desktop, approval }, approved_builds: [desktop], approval_request: null, relation: "no_network", look_alike: null });
    const answers: Array<(p: InvitePreview) => void> = [];
    const client = { previewInvite: () => new Promise<InvitePreview>((resolve) => answers.push(resolve)) } as unknown as Api;
    const form = JoinNetworkForm(() => {}, client);
    const link = form.querySelector("textarea")!;
    const join = form.querySelector('button[type="submit"]') as HTMLButtonElement;
    expect(form.getAttribute("aria-busy")).toBe("false");
    const paste = (text: string) => { link.value = text; link.dispatchEvent(new Event("input")); };
    paste("dan://join/first");
    expect(form.getAttribute("aria-busy")).toBe("true");
    vi.advanceTimersByTime(300);
    paste("dan://join/second");
    vi.advanceTimersByTime(300);
    answers[1](preview("Second", "approved"));
    await vi.runAllTimersAsync();
    expect(form.getAttribute("aria-busy")).toBe("false");
    expect(join.disabled).toBe(false);
    answers[0](preview("First", "not_approved"));
    await vi.runAllTimersAsync();
    expect(form.textContent).toMatch(/Second/);
    expect(form.textContent).not.toMatch(/First/);
    expect(join.disabled).toBe(false);
    vi.useRealTimers();
  });
});

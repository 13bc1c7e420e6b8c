import { describe, expect, it, vi } from "vitest";

vi.mock("@tauri-apps/api/core", () => ({ invoke: vi.fn() }));
vi.mock("@tauri-apps/api/event", () => ({ listen: vi.fn() }));

import type { BuildView, InvitePreview, ProposalView } from "../types";
import { BuildText, buildApproval } from "../components/buildText";
import { describeProposal } from "../views/members";
import { InvitePreviewText } from "../views/startNetwork";

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

  it("words upgrade proposals as sentences", () => {
    const proposal: ProposalView = { id: "p", kind: "upgrade", summary: "", proposer: "ada", yes: 1, no: 0, needed: 2, status: "open", decided_at: null, withdraws_at: null, builds: [headless], withdraws: [] };
    const names = new Map([["ada", "Ada laptop"]]);
    expect(describeProposal(proposal, names)).toBe("Ada laptop proposes approving DAN 0.1.0 · headless · Linux x86-64 alongside the versions approved now. Nothing stops being accepted.");
    const upgrade = describeProposal({ ...proposal, withdraws: [desktop], withdraws_at: Date.parse("2030-01-01T00:00:00Z") }, names);
    expect(upgrade).toMatch(/^Ada laptop proposes approving DAN 0.1.0 · headless · Linux x86-64\. DAN 0.1.0 · desktop · Linux x86-64 will no longer be accepted on /);
    expect(upgrade).toMatch(/must install a new version/);
  });

  it("tells a joiner on an unapproved build before joining, with the request to send", () => {
    const preview: InvitePreview = { network_id: "n".repeat(64), network_name: "Elm Street Library", inviter: "p1", inviter_name: "Ada laptop", expires_ms: 1, your_build: { ...desktop, approval: "not_approved" }, approved_builds: [headless], approval_request: '{"product":"DAN"}' };
    const box = document.createElement("div");
    box.append(...InvitePreviewText(preview));
    expect(box.querySelector('[aria-label="Your version"]')!.textContent).toMatch(/has not approved your version of DAN \(DAN 0.1.0 · desktop · Linux x86-64\)\. It approves: DAN 0.1.0 · headless/);
    expect((box.querySelector('[aria-label="Approval request"]') as HTMLTextAreaElement).value).toBe('{"product":"DAN"}');
    const ok = document.createElement("div");
    ok.append(...InvitePreviewText({ ...preview, your_build: desktop, approval_request: null }));
    expect(ok.querySelector('[aria-label="Your version"]')!.textContent).toMatch(/is approved by this network ✓/);
    expect(ok.querySelector('[aria-label="Approval request"]')).toBeNull();
  });
});

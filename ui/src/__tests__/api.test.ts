import { beforeEach, describe, expect, it, vi } from "vitest";

const invoke = vi.fn();
// Failing commands go through a plain function: a vi.fn spy would track the
// rejected promise and report it as unhandled.
let failWith: unknown = undefined;
vi.mock("@tauri-apps/api/core", () => ({
  invoke: (...args: unknown[]) => (failWith === undefined ? invoke(...args) : Promise.reject(failWith)),
}));
vi.mock("@tauri-apps/api/event", () => ({ listen: vi.fn() }));

import { api, isApiError, toApiError } from "../api";

describe("api", () => {
  beforeEach(() => invoke.mockReset());

  it("passes arguments to the command with the names Tauri expects", async () => {
    invoke.mockResolvedValue({ records: [], total: 0 });
    await api.listRecords({ search: "dune", sort: "title_asc", limit: 10, offset: 20 });
    expect(invoke).toHaveBeenCalledWith("list_records", { query: { search: "dune", sort: "title_asc", limit: 10, offset: 20 } });
    invoke.mockResolvedValue({});
    await api.joinNetwork("dan://join/abc", "Ann");
    expect(invoke).toHaveBeenCalledWith("join_network", { link: "dan://join/abc", adminName: "Ann" });
    await api.changePassword("old password", "new password");
    expect(invoke).toHaveBeenCalledWith("change_password", { old: "old password", new: "new password" });
  });

  it("turns command failures into errors with a code", async () => {
    const failure = async (value: unknown, action: () => Promise<unknown>) => {
      failWith = value;
      try {
        await action();
      } catch (error) {
        return error;
      } finally {
        failWith = undefined;
      }
      return "did not fail";
    };
    expect(await failure({ code: "forming", message: "the network is still forming" }, () => api.putRecord({ fields: {} }))).toEqual({
      code: "forming",
      message: "the network is still forming",
    });
    expect(await failure("boom", () => api.status())).toEqual({ code: "internal", message: "boom" });
  });

  it("recognises errors", () => {
    expect(isApiError({ code: "x", message: "y" })).toBe(true);
    expect(isApiError("x")).toBe(false);
    expect(toApiError(new Error("bad"))).toEqual({ code: "internal", message: "bad" });
  });
});

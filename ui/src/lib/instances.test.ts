import { describe, expect, it } from "vitest";
import { FakeBackend } from "../backend/fake";
import { matchesRow, reasonOf } from "./instances";

const rows = new FakeBackend().rows;
const web = rows[0];
const batch = rows[2];

describe("instance rows", () => {
  it("match on name, id, IP and tags, every word", () => {
    expect(matchesRow(web, "web")).toBe(true);
    expect(matchesRow(web, "WEB 0a1b")).toBe(true);
    expect(matchesRow(web, "web batch")).toBe(false);
    expect(matchesRow(web, "tag:name=web")).toBe(true);
    expect(matchesRow(web, "tag:name=db")).toBe(false);
    expect(matchesRow(web, "")).toBe(true);
  });

  it("say why they cannot be reached", () => {
    expect(reasonOf(web)).toBe("");
    expect(reasonOf(batch)).toBe("stopped");
    expect(reasonOf(rows[3])).toBe("not managed by Systems Manager");
  });
});

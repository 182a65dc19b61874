import { describe, expect, it } from "vitest";
import { describeBuild } from "./build-info";

describe("describeBuild", () => {
  it("names the version reported by the desktop shell", () => {
    expect(describeBuild({ version: "0.1.0" })).toBe("Postern desktop 0.1.0");
  });

  it("says so when the page runs outside the desktop shell", () => {
    expect(describeBuild({ version: null })).toMatch(/not running inside/i);
  });
});

// `faults` (fixture): fails on request, so the conformance suite can check
// that every language maps errors and meets limits the same way.
//
// Input: `{"error": "invalid-input"|"denied"|"failed", "message": "..."}`
// returns that error; `{"spin": true}` never returns; `{"allocate_mb": N}`
// keeps N MiB alive and reports it.

const ERRORS = ["invalid-input", "denied", "failed"];

export const tool = {
  describe() {
    return {
      name: "faults",
      version: "0.1.0",
      description: "Fixture: returns the error it is asked for, spins, or allocates.",
      inputSchema: "{}",
    };
  },

  call(input) {
    const query = JSON.parse(input);
    if (ERRORS.includes(query.error)) throw { tag: query.error, val: query.message ?? "" };
    if (query.spin === true) {
      for (;;) {}
    }
    if (Number.isInteger(query.allocate_mb)) {
      const blocks = [];
      for (let i = 0; i < query.allocate_mb; i++) blocks.push(new Uint8Array(1 << 20).fill(1));
      return JSON.stringify({ allocated_mb: blocks.length });
    }
    throw { tag: "invalid-input", val: "give `error`, `spin` or `allocate_mb`" };
  },
};

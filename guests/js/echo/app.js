// `echo`: returns its JSON input unchanged (world `pure`).

export const tool = {
  describe() {
    return {
      name: "echo",
      version: "0.1.0",
      description: "Returns its JSON input unchanged.",
      inputSchema: "{}",
    };
  },

  call(input) {
    return input;
  },
};

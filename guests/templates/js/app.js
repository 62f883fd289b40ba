// `{{name}}`: an airlock tool (world `{{world}}`). Input `{"name": "..."}`,
// output `{"greeting": "Hello, ...!"}`.

export const tool = {
  describe() {
    return {
      name: "{{name}}",
      version: "0.1.0",
      description: "Greets whoever the input names.",
      inputSchema: '{"type":"object","required":["name"],"properties":{"name":{"type":"string"}}}',
    };
  },

  call(input) {
    const query = JSON.parse(input);
    const name = query?.name;
    if (typeof name !== "string") throw { tag: "invalid-input", val: 'give {"name": "..."}' };
    return JSON.stringify({ greeting: `Hello, ${name}!` });
  },
};

// solidity-coverage settings. The contracts compile with viaIR, which needs the Yul optimizer on to avoid
// "stack too deep" once coverage instruments them; test-only mocks are not what we measure.
module.exports = {
  configureYulOptimizer: true,
  skipFiles: ["test/"],
};

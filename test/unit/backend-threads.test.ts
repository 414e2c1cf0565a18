// The backend suite again with 3 threads on any machine: several kernel helper threads claiming
// chunks (on 2 cores, oversubscribed), which must still give the cpu backend's results, deterministically.
process.env.NAD_TEST_WASM_THREADS = '3';
// eslint-disable-next-line @typescript-eslint/no-require-imports
require('./backend.test');

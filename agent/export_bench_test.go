package agent

// GRPCServerOptions exports the agent's transport settings to the benchmarks, which serve a
// bare gRPC service with them as the floor of the agent's calls.
var GRPCServerOptions = grpcServerOptions

// RefitAll exports refitAll to the benchmarks, which measure the local API while the agent fits.
func (a *Agent) RefitAll() error { return a.refitAll() }

// ReadState exports the sealed state in dir to the tests that check what it keeps.
func ReadState(dir string) (*State, error) {
	key, err := loadDeviceKey(dir, StateFile) // read, never made
	if err != nil {
		return nil, err
	}
	return loadState(dir, key)
}

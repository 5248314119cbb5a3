package agent

// GRPCServerOptions exports the agent's transport settings to the benchmarks, which serve a
// bare gRPC service with them as the floor of the agent's calls.
var GRPCServerOptions = grpcServerOptions

// RefitAll exports refitAll to the benchmarks, which measure the local API while the agent fits.
func (a *Agent) RefitAll() error { return a.refitAll() }

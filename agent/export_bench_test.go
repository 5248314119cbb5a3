package agent

// GRPCServerOptions exports the agent's transport settings to the benchmarks, which serve a
// bare gRPC service with them as the floor of the agent's calls.
var GRPCServerOptions = grpcServerOptions

// The helpers shared with RoasRuntimeTests (SplitMix64, StreamMaker, PipelineHarness), for every file here.
@_exported import RoasCoreTestSupport

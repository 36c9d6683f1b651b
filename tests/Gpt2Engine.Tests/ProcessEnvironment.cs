using Xunit;

namespace Gpt2Engine.Tests;

/// <summary>
/// Tests that set a process-wide environment variable, which tests in other classes read: they run after the parallel
/// tests, one at a time, and restore the variable before they end.
/// </summary>
[CollectionDefinition(nameof(ProcessEnvironment), DisableParallelization = true)]
public sealed class ProcessEnvironment;

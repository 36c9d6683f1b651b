using System.Runtime.InteropServices;

namespace Gpt2Engine.Cli;

/// <summary>
/// The CLI's one Ctrl-C handler. While a command that stops gracefully (generate, train, download) holds a
/// <see cref="Graceful"/> scope, Ctrl-C cancels its token and the process goes on. Otherwise Ctrl-C ends the process as
/// usual, which runs no finally block, so the handler first deletes the temporary files in flight
/// (<see cref="TemporaryPaths.Process"/>): an interrupted convert leaves no <c>.tmp-</c> file behind. SIGTERM
/// (timeout(1), a service stopping) ends the process without finally blocks or even ProcessExit: a handler of its own
/// deletes them too.
/// </summary>
internal static class Interruption
{
    private static readonly Lock Gate = new(); // so that no Ctrl-C cancels a scope's token once the scope is disposed
    private static CancellationTokenSource? _graceful;
    private static PosixSignalRegistration? _termination; // held: a collected registration unregisters its handler

    /// <summary>Called once, by the process's entry point (not by tests, which run commands in the test process).</summary>
    public static void Install()
    {
        Console.CancelKeyPress += OnCancelKeyPress;
        _termination = PosixSignalRegistration.Create(PosixSignal.SIGTERM, _ => TemporaryPaths.Process.DeleteAll());
    }

    /// <summary>Until the returned scope is disposed, Ctrl-C cancels <paramref name="cancel"/> instead of ending the process.</summary>
    public static IDisposable Graceful(CancellationTokenSource cancel)
    {
        lock (Gate) _graceful = cancel;
        return new Scope();
    }

    private static void OnCancelKeyPress(object? sender, ConsoleCancelEventArgs e)
    {
        lock (Gate)
        {
            if (_graceful is not null)
            {
                e.Cancel = true;
                _graceful.Cancel();
                return;
            }
        }
        TemporaryPaths.Process.DeleteAll();
    }

    private sealed class Scope : IDisposable
    {
        public void Dispose()
        {
            lock (Gate) _graceful = null;
        }
    }
}

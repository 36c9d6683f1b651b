namespace Gpt2Engine;

/// <summary>
/// Temporary files and folders in flight. <see cref="Process"/> holds this process's (atomic writes' <c>.tmp-</c>
/// files, the training benchmark's data folder): Ctrl-C ends a .NET process without running finally blocks, so their
/// own clean-up never happens, and an application's Ctrl-C handler calls <see cref="DeleteAll"/> when it lets the
/// process end (the CLI does). Creating, keeping and deleting hold one lock, so each path is either deleted there or
/// never created.
/// </summary>
internal sealed class TemporaryPaths
{
    public static TemporaryPaths Process { get; } = new();

    private readonly Lock _gate = new();
    private readonly HashSet<string> _paths = [];
    private bool _ending;

    /// <summary>Runs <paramref name="create"/>, which makes <paramref name="path"/>, and tracks the path.</summary>
    /// <exception cref="OperationCanceledException">The process is ending (<see cref="DeleteAll"/> ran).</exception>
    public T Create<T>(string path, Func<T> create)
    {
        lock (_gate)
        {
            ThrowIfEnding();
            T created = create();
            _paths.Add(path);
            return created;
        }
    }

    /// <summary>Runs <paramref name="keep"/>, which moves the temporary path into place, and stops tracking it.</summary>
    /// <exception cref="OperationCanceledException">The process is ending: the path is already deleted.</exception>
    public void Keep(string path, Action keep)
    {
        lock (_gate)
        {
            ThrowIfEnding();
            keep();
            _paths.Remove(path);
        }
    }

    /// <summary>Deletes <paramref name="path"/> (a file, or a folder with everything in it) and stops tracking it.</summary>
    public void Delete(string path)
    {
        lock (_gate)
        {
            DeleteQuietly(path);
            _paths.Remove(path);
        }
    }

    /// <summary>Deletes every tracked path; from now on <see cref="Create"/> and <see cref="Keep"/> throw.</summary>
    public void DeleteAll()
    {
        lock (_gate)
        {
            _ending = true;
            foreach (string path in _paths) DeleteQuietly(path);
            _paths.Clear();
        }
    }

    private void ThrowIfEnding()
    {
        if (_ending) throw new OperationCanceledException("the process is ending");
    }

    /// <summary>Best effort: a clean-up that fails must not hide the error that led to it.</summary>
    private static void DeleteQuietly(string path)
    {
        try
        {
            if (Directory.Exists(path)) Directory.Delete(path, recursive: true);
            else File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }
}

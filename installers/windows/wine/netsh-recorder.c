/* Smoke tests only, never shipped: stands in for netsh.exe in the Wine prefix so that the
 * check can read which firewall commands the MSI ran. Appends its command line (UTF-8) to
 * C:\netsh-calls.log and succeeds. */
#include <windows.h>

int main(void)
{
    const WCHAR *line = GetCommandLineW();
    char utf8[8192];
    int n = WideCharToMultiByte(CP_UTF8, 0, line, -1, utf8, sizeof utf8 - 2, NULL, NULL);
    if (n <= 0)
        return 2;
    utf8[n - 1] = '\n';
    HANDLE log = CreateFileW(L"C:\\netsh-calls.log", FILE_APPEND_DATA, FILE_SHARE_READ | FILE_SHARE_WRITE,
                             NULL, OPEN_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
    if (log == INVALID_HANDLE_VALUE)
        return 3;
    DWORD written;
    BOOL ok = WriteFile(log, utf8, (DWORD)n, &written, NULL);
    CloseHandle(log);
    return ok ? 0 : 4;
}
